"""Time per target and the per-round report, as JSON or CSV (`?format=csv`).

- GET /api/target-timings/ (?project=&round=&case=&label=&modality=&status=&submitted_by=&case_kind=,
  ?ordering=time_s,-dice,...): one row per target; reviewers and above of the target's project.
- GET /api/target-timings/{target}/: the same plus per-slice provenance, per-person phases and clock
  offsets.
- GET /api/target-timings/export/?project=&format=csv|json: every row of a project (managers).
- GET /api/timing-report/?project=[&modality=&label=&annotator=]&format=json|csv: the round report
  (managers).
Rows are recomputed first where their events, jobs, revisions or status changed (service.refresh).
"""

import django_filters
from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from annotation_app.annotations.models import Target
from annotation_app.lib.roles import Role, role_at_least
from annotation_app.lib.viewsets import ProjectScopedViewSet
from annotation_app.projects.models import Project
from annotation_app.timing import report, service
from annotation_app.timing.api.renderers import CSVRenderer
from annotation_app.timing.api.serializers import (
    LIST_FIELDS,
    TargetTimingDetailSerializer,
    TargetTimingSerializer,
    TimingReportSerializer,
)
from annotation_app.timing.models import TargetTiming

CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="CSV (with ?format=csv)")


class TimingViewMixin:
    """Projects where the caller may read timings (reviewer and up), and the `?project=` a manager
    asks about (404 for non-members, 403 below the role)."""

    def readable_projects(self) -> list[int] | None:
        if self.request.user.is_superuser:
            return None
        return [pid for pid, role in self._roles().items() if role_at_least(role, Role.REVIEWER)]

    def project_param(self, needed: str) -> Project:
        raw = self.request.query_params.get("project", "")
        if not raw.isdigit():
            raise ValidationError({"project": ["Give the project id (?project=)."]})
        project = Project.objects.filter(pk=int(raw)).first()
        if project is None or not (self.request.user.is_superuser or self.role_in(project.pk)):
            raise NotFound("No such project, or you are not a member of it.")
        if not self.has_role(project.pk, needed):
            raise PermissionDenied("Your role in this project does not allow this action.")
        return project

    def csv_reply(self, rows: list[dict], filename: str, columns: list[str]) -> Response:
        response = Response(rows)
        if getattr(self.request, "accepted_renderer", None) and self.request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        self.csv_columns = columns
        return response

    def get_renderer_context(self):
        return {**super().get_renderer_context(), "csv_columns": getattr(self, "csv_columns", None)}


class TargetTimingFilter(django_filters.FilterSet):
    case = django_filters.NumberFilter(field_name="target__case")

    class Meta:
        model = TargetTiming
        fields = ["project", "round", "case", "label", "modality", "status", "submitted_by", "case_kind"]


class TargetTimingViewSet(TimingViewMixin, ProjectScopedViewSet):
    queryset = TargetTiming.objects.select_related("target__case", "round", "submitted_by")
    serializer_class = TargetTimingSerializer
    filterset_class = TargetTimingFilter
    lookup_field = "target"
    http_method_names = ["get", "head", "options"]
    ordering_fields = [
        "target",
        "time_s",
        "per_frame_s",
        "dice",
        "hd95_mm",
        "n_edits",
        "edit_fraction",
        "status",
        "voxels_changed",
        "last_event_at",
    ]
    required_roles = {"list": Role.REVIEWER, "retrieve": Role.REVIEWER, "export": Role.MANAGER}

    def get_serializer_class(self):
        return TargetTimingDetailSerializer if self.action == "retrieve" else TargetTimingSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        readable = self.readable_projects()
        return queryset if readable is None else queryset.filter(project__in=readable)

    def _refresh(self, **narrow) -> None:
        targets = Target.objects.all()
        readable = self.readable_projects()
        if readable is not None:
            targets = targets.filter(case__project__in=readable)
        project = self.request.query_params.get("project", "")
        if project.isdigit():
            targets = targets.filter(case__project=int(project))
        service.refresh(targets.filter(**narrow))

    def list(self, request, *args, **kwargs):
        self._refresh()
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        target = str(kwargs.get("target", ""))
        if target.isdigit():
            self._refresh(pk=int(target))
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int, required=True),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses={200: TargetTimingSerializer(many=True), (200, "text/csv"): CSV_RESPONSE},
    )
    @action(detail=False, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer], pagination_class=None)
    def export(self, request):
        """Every target's timing in a project (managers), unpaginated: JSON, or CSV with ?format=csv."""
        project = self.project_param(Role.MANAGER)
        service.refresh(Target.objects.filter(case__project=project))
        rows = self.filter_queryset(self.get_queryset().filter(project=project))
        data = TargetTimingSerializer(rows, many=True).data
        return self.csv_reply(data, f"target-timings-project-{project.pk}", LIST_FIELDS)


class TimingReportViewSet(TimingViewMixin, ProjectScopedViewSet):
    """The per-round report of one project (managers)."""

    queryset = TargetTiming.objects.none()
    serializer_class = TimingReportSerializer
    pagination_class = None
    filter_backends: list = []
    renderer_classes = [JSONRenderer, CSVRenderer]
    http_method_names = ["get", "head", "options"]
    required_roles = {"report": Role.MANAGER}

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int, required=True),
            OpenApiParameter("modality", str),
            OpenApiParameter("label", str),
            OpenApiParameter("annotator", int, description="user id of the submitter"),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses={200: TimingReportSerializer, (200, "text/csv"): CSV_RESPONSE},
    )
    def report(self, request, *args, **kwargs):
        """Time per lesion by round, modality and label; reduction vs the manual baseline; Dice(first
        proposal, final); per annotator. CSV (?format=csv): one row per round and group, then per annotator."""
        project = self.project_param(Role.MANAGER)
        service.refresh(Target.objects.filter(case__project=project))
        rows = TargetTiming.objects.filter(project=project)
        filters = {}
        for name in ("modality", "label"):
            if request.query_params.get(name):
                filters[name] = request.query_params[name]
        annotator = request.query_params.get("annotator", "")
        if annotator:
            if not annotator.isdigit():
                raise ValidationError({"annotator": ["A user id."]})
            filters["submitted_by"] = int(annotator)
        all_rows = list(rows)
        usernames = dict(
            get_user_model()
            .objects.filter(pk__in={r.submitted_by_id for r in all_rows if r.submitted_by_id})
            .values_list("pk", "username")
        )
        chosen = list(rows.filter(**filters))
        built = report.build(project, chosen, usernames, filters)
        built["options"] = report.options(all_rows, usernames)  # choices from the whole project
        if request.accepted_renderer.format == "csv":
            return self.csv_reply(report.csv_rows(built), f"timing-report-project-{project.pk}", report.CSV_COLUMNS)
        return Response(built)
