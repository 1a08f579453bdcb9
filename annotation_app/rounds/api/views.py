"""Rounds (managers open and close them; rounds/lifecycle.py), held-out cases (managers), model versions,
their activation log and training runs (admins).

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
from annotation_app.rounds import lifecycle
from annotation_app.rounds.api.serializers import (
    HeldOutCaseSerializer,
    ModelActivationSerializer,
    ModelUploadSerializer,
    ModelVersionSerializer,
    ProjectOnlySerializer,
    ReasonSerializer,
    RoundSerializer,
    TrainingRunSerializer,
    TrainRoundSerializer,
)
from annotation_app.rounds.models import (
    ActivationKind,
    HeldOutCase,
    ModelActivation,
    ModelStatus,
    ModelVersion,
    Round,
    RoundStatus,
    TrainingRun,
    checkpoint_prefix,
)


class RoundViewSet(ProjectScopedViewSet):
    queryset = Round.objects.all()
    serializer_class = RoundSerializer
    filterset_fields = ["project", "status", "is_manual_baseline"]
    ordering_fields = ["number", "opened_at", "id"]
    required_roles = {"close": Role.MANAGER, "train": Role.ADMIN}

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.check_create_permission(data["project"].pk)
        serializer.instance = lifecycle.open_round(
            data["project"], is_manual_baseline=data.get("is_manual_baseline", False),
            model_version=data.get("model_version"),
        )  # fmt: skip

    def perform_update(self, serializer):
        """Only an open round may change whether it is the manual baseline (its pin follows)."""
        round_ = serializer.instance
        if round_.status != RoundStatus.OPEN:
            raise Conflict(f"round {round_.number} is {round_.status}; only an open round can be changed")
        baseline = serializer.validated_data.get("is_manual_baseline", round_.is_manual_baseline)
        pin = None if baseline else (round_.model_version or ModelVersion.active_for(round_.project_id))
        with transaction.atomic():
            serializer.save(model_version=pin)

    @extend_schema(request=None, responses={200: RoundSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Close the round and freeze its training snapshot."""
        round_ = lifecycle.close_round(self.get_object())
        return Response(self.get_serializer(round_).data)

    @extend_schema(request=TrainRoundSerializer, responses={201: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def train(self, request, pk=None):
        """Fine-tune the round's pinned model on its snapshot (a queued training run)."""
        round_ = self.get_object()
        body = self.action_data(TrainRoundSerializer)
        run = lifecycle.start_training(round_, request.user, body["hyperparameters"], celery_task_id=str(uuid.uuid4()))
        return Response(TrainingRunSerializer(run, context=self.get_serializer_context()).data, status=201)


class HeldOutCaseViewSet(ProjectScopedViewSet):
    """Cases never trained on (their accepted masks are the evaluation set); managers mark and unmark."""

    queryset = HeldOutCase.objects.all()
    serializer_class = HeldOutCaseSerializer
    filterset_fields = ["project", "case", "source"]
    ordering_fields = ["case", "id"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def perform_create(self, serializer):
        case = serializer.validated_data["case"]
        self.check_create_permission(case.project_id)
        with transaction.atomic():
            serializer.save(project_id=case.project_id, marked_by=self.request.user, source=HeldOutCase.Source.MANAGER)


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
        "promote": Role.ADMIN,
        "rollback": Role.ADMIN,
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
        version.activate(by=request.user)
        return Response(self.get_serializer(version).data)

    @extend_schema(request=ReasonSerializer, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Make any verified version active, whatever the gate said; who and why are logged."""
        version = self.get_object()
        reason = self.action_data(ReasonSerializer)["reason"]
        version.activate(by=request.user, kind=ActivationKind.PROMOTE, reason=reason)
        return Response(self.get_serializer(version).data)

    @extend_schema(request=ReasonSerializer, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Make an earlier active version active again; who and why are logged."""
        version = self.get_object()
        version.roll_back_to(request.user, self.action_data(ReasonSerializer)["reason"])
        return Response(self.get_serializer(version).data)


class ModelActivationViewSet(ProjectScopedViewSet):
    """The log of every change of a project's active model (read-only)."""

    queryset = ModelActivation.objects.select_related("version", "previous")
    serializer_class = ModelActivationSerializer
    filterset_fields = ["project", "version", "kind"]
    ordering_fields = ["created_at", "id"]
    http_method_names = ["get", "head", "options"]


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
        data = serializer.validated_data
        self.check_create_permission(data["project"].pk)
        serializer.instance = lifecycle.start_training(
            data["round"], self.request.user, data.get("hyperparameters"), celery_task_id=str(uuid.uuid4())
        )

    @extend_schema(request=None, responses={200: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop a run: at once when queued, before its next step when running (its checkpoint is kept)."""
        run = self.get_object()
        run.request_cancel()
        return Response(self.get_serializer(run).data)
