"""Serializers for rounds, held-out cases, model versions (and their activations) and training runs."""

from django.core.files.storage import default_storage
from rest_framework import serializers

from annotation_app.imaging.models import Case
from annotation_app.lib.serializers import ScopedPrimaryKeyRelatedField, StrictModelSerializer
from annotation_app.lib.storage_keys import StorageKeyError, check_storage_key
from annotation_app.projects.models import Project
from annotation_app.rounds.models import (
    HeldOutCase,
    ModelActivation,
    ModelVersion,
    Round,
    TrainingRun,
    checkpoint_prefix,
)
from medsam2.configs import list_configs
from medsam2.training.recipe import FineTuneSettings, SettingsError


def _same_project(attrs: dict, project: Project, *names: str) -> None:
    errors = {
        name: ["Must belong to the same project."]
        for name in names
        if attrs.get(name) is not None and attrs[name].project_id != project.pk
    }
    if errors:
        raise serializers.ValidationError(errors)


class RoundSerializer(StrictModelSerializer):
    """A round pins its model when it opens (model_version: the active one unless named); closing it
    freezes `snapshot` ({"train": [revision ids], "held_out": [...]}) and its `snapshot_hash`."""

    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    model_version = ScopedPrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False, allow_null=True)
    create_only_fields = ("project", "model_version")

    class Meta:
        model = Round
        fields = [
            "id",
            "project",
            "number",
            "status",
            "model_version",
            "is_manual_baseline",
            "opened_at",
            "closed_at",
            "snapshot",
            "snapshot_hash",
        ]
        read_only_fields = ["id", "number", "status", "opened_at", "closed_at", "snapshot", "snapshot_hash"]
        # "One open round per project" is checked by the view under a lock (409), and by the database.
        validators: list = []

    def validate(self, attrs):
        project = attrs.get("project") or self.instance.project
        _same_project(attrs, project, "model_version")
        return attrs


def _check_sha256(value: str) -> str:
    if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower())):
        raise serializers.ValidationError("sha256 must be 64 hexadecimal characters.")
    return value.lower()


def _check_config(value: str) -> str:
    if value not in list_configs():
        raise serializers.ValidationError(f"Unknown model config; known: {', '.join(list_configs())}.")
    return value


class ModelVersionSerializer(StrictModelSerializer):
    """A version registered from a checkpoint already in the project's storage (models/<project>/...).

    It starts `pending`; a worker loads the checkpoint strictly and makes it a candidate, or rejects it
    with the reason. Uploading a file: POST /api/model-versions/upload/ (ModelUploadSerializer)."""

    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    parent = ScopedPrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False, allow_null=True)
    create_only_fields = ("project", "checkpoint_key", "sha256", "config_name", "parent")

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "project",
            "name",
            "checkpoint_key",
            "sha256",
            "config_name",
            "parent",
            "training_run",
            "metrics",
            "status",
            "status_reason",
            "verified_at",
            "round",
            "snapshot_hash",
            "hyperparameters",
            "code_version",
            "created_by",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "training_run",
            "metrics",
            "status",
            "status_reason",
            "verified_at",
            "round",
            "snapshot_hash",
            "hyperparameters",
            "code_version",
            "created_by",
            "created_at",
        ]
        # Unique names and "one active model" are the database's to enforce (a clash is a 409).
        validators: list = []

    def validate_sha256(self, value: str) -> str:
        return _check_sha256(value)

    def validate_config_name(self, value: str) -> str:
        return _check_config(value)

    def validate(self, attrs):
        project = attrs.get("project") or self.instance.project
        _same_project(attrs, project, "parent")
        if "checkpoint_key" in attrs:
            key = attrs["checkpoint_key"]
            try:
                check_storage_key(key, checkpoint_prefix(project.pk))
            except StorageKeyError as exc:
                raise serializers.ValidationError({"checkpoint_key": [f"{exc}."]}) from None
            if not default_storage.exists(key):
                raise serializers.ValidationError(
                    {"checkpoint_key": ["No checkpoint is stored under this key; upload it first."]}
                )
        return attrs


class ProjectOnlySerializer(serializers.Serializer):
    """The project a multipart request names (other fields are validated after the role check)."""

    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())


class ModelUploadSerializer(serializers.Serializer):
    """multipart/form-data: a checkpoint file (the official {"model": state_dict} format) and its config."""

    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    name = serializers.CharField(max_length=200)
    config_name = serializers.CharField(max_length=100, default="medsam2_t512")
    parent = ScopedPrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False, allow_null=True)
    sha256 = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    file = serializers.FileField()

    def validate_sha256(self, value: str) -> str:
        return _check_sha256(value)

    def validate_config_name(self, value: str) -> str:
        return _check_config(value)

    def validate_file(self, value):
        head = value.read(4)
        value.seek(0)
        if head != b"PK\x03\x04":  # torch.save's zip container; the worker's strict load checks the rest
            raise serializers.ValidationError("This is not a PyTorch checkpoint (torch.save file).")
        return value

    def validate(self, attrs):
        _same_project(attrs, attrs["project"], "parent")
        return attrs


class ModelActivationSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelActivation
        fields = ["id", "project", "version", "previous", "kind", "by", "reason", "created_at"]
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    """Why an admin promotes or rolls back (kept in the activation log)."""

    reason = serializers.CharField(max_length=2000)


class HeldOutCaseSerializer(StrictModelSerializer):
    case = ScopedPrimaryKeyRelatedField(queryset=Case.objects.all())
    project_source = "case__project"

    class Meta:
        model = HeldOutCase
        fields = ["id", "project", "case", "source", "marked_by", "created_at"]
        read_only_fields = ["id", "project", "source", "marked_by", "created_at"]
        validators: list = []  # a case marked twice is a 409 from the database


class TrainRoundSerializer(serializers.Serializer):
    hyperparameters = serializers.JSONField(required=False, default=dict)

    def validate_hyperparameters(self, value):
        return _check_settings(value)


def _check_settings(value):
    if not isinstance(value, dict):
        raise serializers.ValidationError("hyperparameters must be an object.")
    try:
        FineTuneSettings.from_dict(value)
    except SettingsError as exc:
        raise serializers.ValidationError(str(exc)) from None
    return value


class TrainingRunSerializer(StrictModelSerializer):
    """A run trains the round's pinned model on the round's snapshot; `hyperparameters` may set any of
    medsam2.training.recipe.FineTuneSettings (the rest follow the published recipe)."""

    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    round = ScopedPrimaryKeyRelatedField(queryset=Round.objects.all())

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "project",
            "round",
            "base_model",
            "status",
            "progress",
            "hyperparameters",
            "metrics",
            "log",
            "celery_task_id",
            "cancel_requested",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "step",
            "total_steps",
            "loss",
            "learning_rate",
            "eta_s",
            "last_validation",
            "history",
            "worker",
            "heartbeat_at",
            "attempts",
            "checkpoint_key",
            "error",
        ]
        read_only_fields = [
            "id",
            "base_model",
            "step",
            "total_steps",
            "loss",
            "learning_rate",
            "eta_s",
            "last_validation",
            "history",
            "worker",
            "heartbeat_at",
            "attempts",
            "checkpoint_key",
            "error",
            "status",
            "progress",
            "metrics",
            "log",
            "celery_task_id",
            "cancel_requested",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def validate_hyperparameters(self, value):
        return _check_settings(value)

    def validate(self, attrs):
        _same_project(attrs, attrs["project"], "round")
        return attrs
