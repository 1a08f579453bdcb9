"""PACS API: connections (site admins write them), PACS searches and imports (managers), SEG sends
(reviewers send, every member reads the state).

Connections are visible to the members of their project, site-wide ones to everyone signed in; their
credentials are never returned. Searches call the PACS from the server only at the connection's own
URLs, and answer 502 with the reason when the PACS cannot be reached or fails.
"""

from django.db import transaction
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from annotation_app.lib.pagination import StandardPagination
from annotation_app.lib.roles import Role, role_at_least
from annotation_app.lib.serializers import member_project_ids
from annotation_app.lib.viewsets import CreateReadViewSet
from annotation_app.pacs import client, services
from annotation_app.pacs.api.serializers import (
    ConnectionSerializer,
    ImportSerializer,
    SendSerializer,
    SeriesSearchSerializer,
    StudySearchSerializer,
)
from annotation_app.pacs.models import DicomWebConnection, PacsImport, SegSend
from annotation_app.projects.models import Membership

SITE_ADMIN_ACTIONS = {"create", "update", "partial_update", "destroy"}


class SiteAdminWritesConnections(BasePermission):
    message = "Only a site administrator can add or change a PACS connection."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return view.action not in SITE_ADMIN_ACTIONS or request.user.is_superuser


class ConnectionViewSet(viewsets.ModelViewSet):
    serializer_class = ConnectionSerializer
    permission_classes = [SiteAdminWritesConnections]
    pagination_class = StandardPagination
    filterset_fields = ["project"]

    def get_queryset(self):
        queryset = DicomWebConnection.objects.all()
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        if self.request.user.is_superuser:
            return queryset
        return queryset.filter(Q(project__isnull=True) | Q(project__in=member_project_ids(self.request.user)))

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)

    def _manager_project(self, connection: DicomWebConnection, project_id: int) -> int:
        """The project a search is for: the caller must manage it and the connection must serve it."""
        user = self.request.user
        if not user.is_superuser:
            role = Membership.objects.filter(user=user, project_id=project_id).values_list("role", flat=True).first()
            if role is None:
                raise NotFound("No such project, or you are not a member of it.")
            if not role_at_least(role, Role.MANAGER):
                raise PermissionDenied("Only a project manager searches the PACS.")
        if not connection.usable_by(project_id):
            raise NotFound("No such connection for this project.")
        return project_id

    def _query(self, serializer_class):
        serializer = serializer_class(data=self.request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(parameters=[StudySearchSerializer], responses={200: dict})
    @action(detail=True, methods=["get"])
    def studies(self, request, pk=None):
        connection = self.get_object()
        params = self._query(StudySearchSerializer)
        self._manager_project(connection, params.pop("project"))
        try:
            found = client.search_studies(connection, client.StudyQuery(**params))
        except client.PacsError as exc:
            return Response({"detail": exc.message}, status=status.HTTP_502_BAD_GATEWAY)
        return Response({"results": found, "limit": client.SEARCH_LIMIT})

    @extend_schema(parameters=[SeriesSearchSerializer], responses={200: dict})
    @action(detail=True, methods=["get"])
    def series(self, request, pk=None):
        connection = self.get_object()
        params = self._query(SeriesSearchSerializer)
        project_id = self._manager_project(connection, params["project"])
        try:
            found = client.search_series(connection, params["study_uid"])
        except client.PacsError as exc:
            return Response({"detail": exc.message}, status=status.HTTP_502_BAD_GATEWAY)
        imported = dict(
            PacsImport.objects.filter(project_id=project_id, series_uid__in=[s["SeriesInstanceUID"] for s in found])
            .exclude(status="failed")
            .values_list("series_uid", "pk")
        )
        for item in found:
            item["import"] = imported.get(item["SeriesInstanceUID"])
        return Response({"results": found})


class ImportViewSet(CreateReadViewSet):
    queryset = PacsImport.objects.select_related("case")
    serializer_class = ImportSerializer
    project_field = "project"
    filterset_fields = ["project", "status", "series_uid", "connection"]
    ordering_fields = ["id", "created_at"]
    required_roles = {"list": Role.ANNOTATOR, "retrieve": Role.ANNOTATOR, "create": Role.MANAGER}

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.check_create_permission(data["project"].pk)
        serializer.instance = services.create_import(
            data["project"],
            data["connection"],
            data["study_uid"],
            data["series_uid"],
            self.request.user,
            description=data.get("description", ""),
        )


class SendViewSet(CreateReadViewSet):
    queryset = SegSend.objects.select_related("revision")
    serializer_class = SendSerializer
    project_field = "target__case__project"
    filterset_fields = {
        "target": ["exact"],
        "target__case": ["exact"],
        "target__case__project": ["exact"],
        "status": ["exact"],
        "connection": ["exact"],
    }
    ordering_fields = ["id", "created_at"]
    required_roles = {
        "list": Role.ANNOTATOR,
        "retrieve": Role.ANNOTATOR,
        "create": Role.REVIEWER,
        "retry": Role.REVIEWER,
    }

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.check_create_permission(data["target"].case.project_id)
        serializer.instance = services.create_send(data["target"], data["connection"], user=self.request.user)

    @extend_schema(request=None, responses={202: SendSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        send = self.get_object()
        with transaction.atomic():
            send = services.retry_send(send)
        return Response(self.get_serializer(send).data, status=status.HTTP_202_ACCEPTED)
