"""Rounds (managers open and close them), model versions and training runs (admins).

A training run is created as a queued row; the fine-tuning task (lib/tasks.py: FINE_TUNE) is sent once
the row is committed, so the web process never imports the worker code (or torch). A model version is
registered from a checkpoint in the project's storage (POST with checkpoint_key) or uploaded
(POST .../upload/, multipart); it stays `pending` until a worker has loaded it strictly
(VERIFY_CHECKPOINT), and only a verified version can be activated.
"""

import uuid

import django_filters
from django.core.files.storage import default_storage
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from annotation_app.lib import tasks
from annotation_app.lib.errors import Conflict
from annotation_app.lib.roles import Role
from annotation_app.lib.viewsets import CreateReadViewSet, ProjectScopedViewSet
from annotation_app.projects.models import Project
from annotation_app.rounds.api.serializers import (
    ModelUploadSerializer,
    ModelVersionSerializer,
    ProjectOnlySerializer,
    RoundSerializer,
    TrainingRunSerializer,
)
from annotation_app.rounds.models import (
    ModelStatus,
    ModelVersion,
    Round,
    RoundStatus,
    TrainingRun,
    TrainingStatus,
    checkpoint_prefix,
)


class RoundViewSet(ProjectScopedViewSet):
    queryset = Round.objects.all()
    serializer_class = RoundSerializer
    filterset_fields = ["project", "status", "is_manual_baseline"]
    ordering_fields = ["number", "opened_at", "id"]
    required_roles = {"close": Role.MANAGER}

    def perform_create(self, serializer):
        project = serializer.validated_data["project"]
        self.check_create_permission(project.pk)
        with transaction.atomic():
            # Lock the project row: two managers opening a round at once take turns, so the second
            # sees the first one's open round (409) instead of racing it for the same number.
            Project.objects.select_for_update().filter(pk=project.pk).first()
            if Round.objects.filter(project=project, status=RoundStatus.OPEN).exists():
                raise Conflict("this project already has an open round; close it first")
            extra = {"number": Round.next_number(project.pk)}
            if "model_version" not in serializer.validated_data and not serializer.validated_data.get(
                "is_manual_baseline"
            ):
                # A model-assisted round records the model it starts with (None if none is active).
                extra["model_version"] = ModelVersion.active_for(project.pk)
            serializer.save(**extra)

    @extend_schema(request=None, responses={200: RoundSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        round_ = self.get_object()
        round_.close()
        return Response(self.get_serializer(round_).data)


class ModelVersionViewSet(ProjectScopedViewSet):
    queryset = ModelVersion.objects.all()
    serializer_class = ModelVersionSerializer
    filterset_fields = ["project", "status"]
    ordering_fields = ["created_at", "name", "id"]
    required_roles = {
        "create": Role.ADMIN,
        "update": Role.ADMIN,
        "partial_update": Role.ADMIN,
        "destroy": Role.ADMIN,
        "activate": Role.ADMIN,
        "upload": Role.ADMIN,
    }

    def perform_create(self, serializer):
        self.check_create_permission(serializer.validated_data["project"].pk)
        with transaction.atomic():
            version = serializer.save(status=ModelStatus.PENDING, created_by=self.request.user)
            tasks.send(tasks.VERIFY_CHECKPOINT, version.pk, on_error=version.refuse)

    @extend_schema(
        request={"multipart/form-data": ModelUploadSerializer},
        responses={201: ModelVersionSerializer},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser, JSONParser])
    def upload(self, request):
        """Store a checkpoint file under models/<project>/uploads/ and register it (pending)."""
        # The role first (from the project alone), then the file: a member below admin learns nothing more.
        self.check_create_permission(self.action_data(ProjectOnlySerializer)["project"].pk)
        body = self.action_data(ModelUploadSerializer)
        project = body["project"]
        key = default_storage.save(f"{checkpoint_prefix(project.pk)}uploads/{uuid.uuid4().hex}.pt", body["file"])
        try:
            with transaction.atomic():
                version = ModelVersion.objects.create(
                    project=project,
                    name=body["name"],
                    checkpoint_key=key,
                    sha256=body["sha256"],
                    config_name=body["config_name"],
                    parent=body.get("parent"),
                    status=ModelStatus.PENDING,
                    created_by=request.user,
                )
                tasks.send(tasks.VERIFY_CHECKPOINT, version.pk, on_error=version.refuse)
        except BaseException:
            default_storage.delete(key)  # a refused row leaves no file behind
            raise
        return Response(self.get_serializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        version = self.get_object()
        version.activate()
        return Response(self.get_serializer(version).data)


class TrainingRunFilter(django_filters.FilterSet):
    class Meta:
        model = TrainingRun
        fields = ["project", "round", "status"]


class TrainingRunViewSet(CreateReadViewSet):
    queryset = TrainingRun.objects.all()
    serializer_class = TrainingRunSerializer
    filterset_class = TrainingRunFilter
    ordering_fields = ["created_at", "id"]
    required_roles = {"create": Role.ADMIN, "cancel": Role.ADMIN}

    def perform_create(self, serializer):
        project = serializer.validated_data["project"]
        self.check_create_permission(project.pk)
        task_id = str(uuid.uuid4())
        with transaction.atomic():
            run = serializer.save(requested_by=self.request.user, celery_task_id=task_id)
            tasks.send(tasks.FINE_TUNE, run.pk, task_id=task_id)

    @extend_schema(request=None, responses={200: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        finished = [TrainingStatus.SUCCEEDED, TrainingStatus.FAILED, TrainingStatus.CANCELLED]
        if run.status in finished:
            raise Conflict(f"training run is {run.status}; nothing to cancel")
        TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
        TrainingRun.objects.filter(pk=run.pk, status=TrainingStatus.QUEUED).update(status=TrainingStatus.CANCELLED)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data)
