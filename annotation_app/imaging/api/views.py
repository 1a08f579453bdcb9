"""Cases: list/retrieve/update, upload, slices, thumbnails, mask import and export.

Image responses are plain HttpResponses (bytes); `?format=` names the image or export format here, so
content negotiation always picks JSON (used for error bodies only).
"""

import hashlib
import json
from pathlib import Path

from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.db import transaction
from django.db.models import Count
from django.http import FileResponse, HttpResponse, HttpResponseNotModified
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_app.imaging import rendering
from annotation_app.imaging.api.serializers import CaseSerializer, UploadFormSerializer
from annotation_app.imaging.ingest import stage_upload
from annotation_app.imaging.io.errors import IngestError
from annotation_app.imaging.limits import Limits
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.lib.redact import redact_paths
from annotation_app.lib.roles import Role
from annotation_app.lib.viewsets import ProjectScopedViewSet
from annotation_app.projects.models import Modality, Project

_BINARY_ACTIONS = {"slice", "thumbnail", "export"}
_UPLOAD_FIELDS = {"project", "name", "modality", "assignee", "file", "files"}
CACHE_CONTROL = "private, max-age=86400"
_BINARY = {(200, "application/octet-stream"): OpenApiTypes.BINARY}


def _query(name: str, kind=str, text: str = "", enum=None) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.QUERY, required=False, description=text, enum=enum)


def error(detail: str, status_code: int = 400, **extra) -> Response:
    return Response({"detail": detail, **extra}, status=status_code)


def ingest_error(exc: IngestError) -> Response:
    return Response({"detail": exc.message, "code": exc.code}, status=exc.status)


def etag_for(*parts) -> str:
    return '"' + hashlib.sha1(repr(parts).encode()).hexdigest()[:32] + '"'


def not_modified(request, etag: str) -> bool:
    header = request.META.get("HTTP_IF_NONE_MATCH", "")
    return etag in [tag.strip() for tag in header.split(",")] or header.strip() == "*"


def binary(
    body: bytes,
    content_type: str,
    etag: str | None = None,
    headers: dict | None = None,
    filename: str | None = None,
) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    if etag:
        response["ETag"] = etag
        response["Cache-Control"] = CACHE_CONTROL
    for key, value in (headers or {}).items():
        response[key] = value
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CaseViewSet(ProjectScopedViewSet):
    serializer_class = CaseSerializer
    queryset = Case.objects.select_related("assignee", "reviewer")
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    required_roles = {
        "upload": Role.MANAGER,
        "slice": Role.ANNOTATOR,
        "thumbnail": Role.ANNOTATOR,
        "export": Role.ANNOTATOR,
        "import_masks": Role.ANNOTATOR,
        "import_folder": Role.MANAGER,
    }
    filterset_fields: list[str] = []
    ordering_fields = ["id", "name", "created_at", "status"]

    # --- request plumbing
    def initialize_request(self, request, *args, **kwargs):
        # Uploads stream to temporary files on disk, whatever their size.
        if request.method == "POST" and request.path.rstrip("/").endswith(("/upload", "/import-masks")):
            request.upload_handlers = [TemporaryFileUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    def perform_content_negotiation(self, request, force=False):
        if getattr(self, "action", None) in _BINARY_ACTIONS:
            renderer = JSONRenderer()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list" or self.action == "retrieve":
            # An aggregate drops Meta.ordering; keep pages stable.
            queryset = queryset.annotate(targets_count=Count("targets", distinct=True)).order_by("project_id", "id")
        params = self.request.query_params
        if params.get("project"):
            queryset = queryset.filter(project_id=_int_or_none(params["project"]))
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        if params.get("assignee"):
            queryset = queryset.filter(assignee_id=_int_or_none(params["assignee"]))
        if params.get("mine") in ("1", "true", "yes"):
            queryset = queryset.filter(assignee=self.request.user)
        if params.get("reviewing") in ("1", "true", "yes"):
            queryset = queryset.filter(reviewer=self.request.user)
        return queryset

    # --- CRUD
    def create(self, request, *args, **kwargs):
        raise MethodNotAllowed(
            "POST", detail="Cases are created by uploading images: POST /api/cases/upload/."
        )

    def perform_destroy(self, instance):
        from annotation_app.imaging.storage_cleanup import delete_case_files

        if instance.targets.exists():
            from annotation_app.lib.errors import Conflict

            raise Conflict("the case has targets; archive it instead (status=archived)")
        with transaction.atomic():
            instance.delete()
            transaction.on_commit(lambda: delete_case_files(instance))

    # --- upload
    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "project": {"type": "integer"},
                    "file": {"type": "string", "format": "binary"},
                    "name": {"type": "string"},
                    "modality": {"type": "string"},
                    "assignee": {"type": "integer"},
                },
            }
        },
        responses={202: CaseSerializer(many=True)},
        description="Upload DICOM (zip or files), NIfTI/NRRD/MHA/MHD, video or zipped PNG/JPEG frames; "
        "validated now (4xx with a reason, nothing kept), converted by the ingest task.",
    )
    @action(detail=False, methods=["post"], url_path="upload")
    def upload(self, request):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        limits = Limits.current()
        if length > limits.max_upload_bytes:
            return error(f"the upload is larger than {limits.max_upload_bytes} bytes", 413, code="too_large")
        unknown = sorted(set(request.data.keys()) - _UPLOAD_FIELDS)
        if unknown:
            return Response(
                {"detail": "Invalid request.", "errors": {k: ["Unknown field."] for k in unknown}}, status=400
            )
        form = UploadFormSerializer(
            data={
                k: request.data.get(k)
                for k in request.data
                if k in ("project", "name", "modality", "assignee")
            }
        )
        form.is_valid(raise_exception=True)
        project = Project.objects.filter(pk=form.validated_data["project"]).first()
        if project is None:
            return error("No such project, or you are not a member of it.", 404)
        self.check_create_permission(project.pk)
        files = request.FILES.getlist("file") + request.FILES.getlist("files")
        if not files:
            return error("no file was uploaded (multipart field 'file')", 400, code="empty")
        assignee = None
        if form.validated_data.get("assignee"):
            from django.contrib.auth import get_user_model

            assignee = (
                get_user_model()
                .objects.filter(pk=form.validated_data["assignee"], memberships__project=project)
                .first()
            )
            if assignee is None:
                return error("the assignee must be a member of the project", 400, code="invalid_assignee")
        try:
            cases = stage_upload(
                project,
                [(f.name, f) for f in files],
                name=form.validated_data.get("name") or None,
                modality=form.validated_data.get("modality") or None,
                assignee=assignee,
            )
        except IngestError as exc:
            return ingest_error(exc)
        return Response(CaseSerializer(cases, many=True).data, status=status.HTTP_202_ACCEPTED)

    # --- the server-side import folder (IMPORT_DIR)
    @extend_schema(
        parameters=[OpenApiParameter("project", int, OpenApiParameter.QUERY, required=True)],
        request={
            "application/json": {
                "type": "object",
                "properties": {
                    "project": {"type": "integer"},
                    "entries": {"type": "array", "items": {"type": "string"}},
                    "modality": {"type": "string"},
                },
            }
        },
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT},
        description="GET lists the top-level entries of IMPORT_DIR (imported or not into the project); "
        "POST imports the named entries (each a file or a folder = one upload) through the normal checks.",
    )
    @action(detail=False, methods=["get", "post"], url_path="import-folder")
    def import_folder(self, request):
        from annotation_app.imaging import folder_import

        source = request.query_params if request.method == "GET" else request.data
        project = Project.objects.filter(pk=_int_or_none(source.get("project"))).first()
        if project is None:
            return error("No such project, or you are not a member of it.", 404)
        self.check_create_permission(project.pk)
        try:
            if request.method == "GET":
                root = folder_import.folder()
                # the folder's name only: its place on the server's disk is no business of a project admin
                return Response({"folder": root.name, "entries": folder_import.list_entries(project)})
            unknown = sorted(set(request.data.keys()) - {"project", "entries", "modality"})
            entries = request.data.get("entries")
            if unknown or not isinstance(entries, list) or not entries:
                errors = {k: ["Unknown field."] for k in unknown}
                if not isinstance(entries, list) or not entries:
                    errors["entries"] = ["A non-empty list of entry names is required."]
                return Response({"detail": "Invalid request.", "errors": errors}, status=400)
            modality = request.data.get("modality") or None
            if modality and modality not in Modality.values:
                return error(f"unknown modality {modality!r}", 400, code="invalid_modality")
            cases, problems = folder_import.import_entries(project, entries, modality=modality)
        except IngestError as exc:
            return ingest_error(exc)
        body = {"cases": CaseSerializer(cases, many=True).data, "errors": problems}
        if not cases and problems:
            return Response({"detail": "Nothing was imported.", **body}, status=400)
        return Response(body, status=status.HTTP_202_ACCEPTED)

    # --- slices and thumbnails
    def _ready(self, case):
        if case.status not in (CaseStatus.READY, CaseStatus.ARCHIVED) or not case.image_key:
            return error(f"the case is not ready (status {case.status})", 409, code="not_ready")
        return None

    @extend_schema(
        parameters=[
            _query("axis", str, "axial | coronal | sagittal (volumes); frame (videos)", list(rendering.AXES)),
            _query("index", int, "slice/frame index (default: the middle)"),
            _query(
                "format",
                str,
                "png | webp | raw (int16 LE for volumes, uint8 for videos)",
                list(rendering.FORMATS),
            ),
            _query("wl", float, "window level, real units (HU for CT)"),
            _query("ww", float, "window width, real units"),
            _query("preset", str, "named CT window", list(rendering.PRESETS)),
        ],
        responses=_BINARY,
    )
    @action(detail=True, methods=["get"])
    def slice(self, request, pk=None):
        case = self.get_object()
        if (problem := self._ready(case)) is not None:
            return problem
        params = request.query_params
        axis = params.get("axis", "axial")
        fmt = params.get("format", "png")
        try:
            index = int(
                params.get("index", rendering.axis_length(case, axis) // 2 if axis in rendering.AXES else 0)
            )
            level = float(params["wl"]) if params.get("wl") not in (None, "") else None
            width = float(params["ww"]) if params.get("ww") not in (None, "") else None
        except ValueError:
            return error("index must be an integer, wl and ww numbers", 400, code="invalid")
        preset = params.get("preset") or None
        if fmt not in rendering.FORMATS:
            return error(f"format must be one of {', '.join(rendering.FORMATS)}", 400, code="invalid")
        etag = etag_for(
            case.pk, case.image_key, case.updated_at.isoformat(), axis, index, fmt, level, width, preset
        )
        if not_modified(request, etag):
            response = HttpResponseNotModified()
            response["ETag"] = etag
            response["Cache-Control"] = CACHE_CONTROL
            return response
        try:
            body, headers = rendering.render_slice(case, axis, index, fmt, level, width, preset)
        except rendering.SliceRequestError as exc:
            return error(str(exc), 400, code="invalid")
        except FileNotFoundError as exc:
            return error(redact_paths(str(exc)), 410, code="missing")
        return binary(body, rendering.CONTENT_TYPES[fmt], etag, headers)

    @extend_schema(parameters=[_query("format", str, "png | webp", ["png", "webp"])], responses=_BINARY)
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        case = self.get_object()
        if (problem := self._ready(case)) is not None:
            return problem
        fmt = request.query_params.get("format", "png")
        if fmt not in ("png", "webp"):
            return error("format must be png or webp", 400, code="invalid")
        etag = etag_for("thumb", case.pk, case.image_key, case.updated_at.isoformat(), fmt)
        if not_modified(request, etag):
            response = HttpResponseNotModified()
            response["ETag"] = etag
            return response
        try:
            body = rendering.render_thumbnail(case, fmt)
        except FileNotFoundError as exc:
            return error(redact_paths(str(exc)), 410, code="missing")
        return binary(body, rendering.CONTENT_TYPES[fmt], etag)

    # --- masks in and out
    @extend_schema(
        parameters=[
            _query("format", str, "nifti | dicom-seg | coco", ["nifti", "dicom-seg", "coco"]),
            _query("status", str, "only targets in these statuses, comma-separated (e.g. accepted)"),
        ],
        responses=_BINARY,
    )
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        from annotation_app.imaging.exports import FORMATS, ExportError, export_case

        case = self.get_object()
        if (problem := self._ready(case)) is not None:
            return problem
        fmt = request.query_params.get("format", "nifti")
        if fmt not in FORMATS:
            return error(f"format must be one of {', '.join(FORMATS)}", 400, code="invalid")
        statuses = [s for s in request.query_params.get("status", "").split(",") if s] or None
        try:
            body, content_type, filename, mapping = export_case(case, fmt, statuses)
        except ExportError as exc:
            return error(str(exc), 400, code="invalid")
        header = json.dumps([{k: m[k] for k in ("value", "target", "label") if k in m} for m in mapping])
        return binary(body, content_type, headers={"X-Label-Map": header[:4000]}, filename=filename)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses={201: OpenApiTypes.OBJECT},
        description="A label map (NIfTI/NRRD/MHA on the case's grid) or DICOM SEG; one target per label.",
    )
    @action(detail=True, methods=["post"], url_path="import-masks")
    def import_masks(self, request, pk=None):
        from annotation_app.imaging.imports import import_masks

        case = self.get_object()
        if (problem := self._ready(case)) is not None:
            return problem
        upload = request.FILES.get("file")
        if upload is None:
            return error("no file was uploaded (multipart field 'file')", 400, code="empty")
        unknown = sorted(set(request.data.keys()) - {"file"})
        if unknown:
            return Response(
                {"detail": "Invalid request.", "errors": {k: ["Unknown field."] for k in unknown}}, status=400
            )
        path = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else None
        try:
            if path is None:
                import tempfile

                with tempfile.NamedTemporaryFile(suffix=_suffix(upload.name)) as handle:
                    for chunk in upload.chunks():
                        handle.write(chunk)
                    handle.flush()
                    targets = import_masks(case, Path(handle.name), upload.name, request.user)
            else:
                named = Path(path).with_name(Path(path).name + _suffix(upload.name))
                Path(path).rename(named)
                try:
                    targets = import_masks(case, named, upload.name, request.user)
                finally:
                    named.rename(path)
        except IngestError as exc:
            return ingest_error(exc)
        return Response(
            {
                "targets": [
                    {
                        "id": t.pk,
                        "label": t.label,
                        "key_frame": t.key_frame,
                        "voxel_count": t.current_revision.voxel_count,
                    }
                    for t in targets
                ]
            },
            status=status.HTTP_201_CREATED,
        )


class ProjectExportView(APIView):
    """GET /api/projects/{id}/export/: the project's masks as one zip, streamed from a temporary file."""

    def perform_content_negotiation(self, request, force=False):
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        parameters=[_query("status", str, "only targets in these statuses, comma-separated")],
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request, pk: int):
        from annotation_app.imaging.exports import project_zip

        project = Project.objects.filter(pk=pk).first()
        if project is None or not (
            request.user.is_superuser or project.memberships.filter(user=request.user).exists()
        ):
            return error("No such project, or you are not a member of it.", 404)
        statuses = [s for s in request.query_params.get("status", "").split(",") if s] or None
        handle, size = project_zip(project, statuses)
        response = FileResponse(
            handle,
            content_type="application/zip",
            as_attachment=True,
            filename=f"project_{project.pk}_export.zip",
        )
        response["Content-Length"] = str(size)
        return response


def _suffix(name: str) -> str:
    lower = name.lower()
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".dcm"):
        if lower.endswith(suffix):
            return suffix
    return ""


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
