"""Export jobs over REST (managers): start one, follow its progress, download the file.

- POST /api/export-jobs/ {project, case?, format, statuses?} -> 202 job (queued on `default`); 409 while
  the same export (project, case, format) is still queued or running.
- GET /api/export-jobs/?project= and /{id}/: status, progress 0..1, error, download_url once done.
- GET /api/export-jobs/{id}/download/ -> the file; 409 until the job has succeeded.
"""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from annotation_app.exports.api.serializers import ExportJobSerializer
from annotation_app.exports.models import ExportJob, ExportStatus
from annotation_app.exports.services import enqueue_export, open_result
from annotation_app.lib.errors import Conflict
from annotation_app.lib.roles import Role, role_at_least
from annotation_app.lib.viewsets import CreateReadViewSet


class ExportJobViewSet(CreateReadViewSet):
    queryset = ExportJob.objects.select_related("case")
    serializer_class = ExportJobSerializer
    filterset_fields = ["project", "case", "status", "format"]
    ordering_fields = ["id", "created_at"]
    required_roles = {"create": Role.MANAGER, "retrieve": Role.MANAGER, "download": Role.MANAGER}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.user.is_superuser or getattr(self, "swagger_fake_view", False):
            return queryset
        # exports are the managers': other members do not see them at all
        managed = [pid for pid, role in self._roles().items() if role_at_least(role, Role.MANAGER)]
        return queryset.filter(project__in=managed)

    def perform_content_negotiation(self, request, force=False):
        if getattr(self, "action", None) == "download":
            renderer = JSONRenderer()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.check_create_permission(serializer.validated_data["project"].pk)
        job = ExportJob(created_by=request.user, **serializer.validated_data)
        if (running := job.duplicate_of()) is not None:
            raise Conflict(f"the same export is already {running.status} (job {running.pk})")
        job.save()
        enqueue_export(job)
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        job = self.get_object()
        if job.status != ExportStatus.SUCCEEDED:
            raise Conflict(f"the export is {job.status}; download it once it has succeeded")
        return FileResponse(open_result(job), content_type=job.content_type, as_attachment=True, filename=job.filename)
