"""Serializers for rounds, model versions and training runs."""

from django.core.files.storage import default_storage
from rest_framework import serializers

from annotation_app.lib.serializers import ScopedPrimaryKeyRelatedField, StrictModelSerializer
from annotation_app.lib.storage_keys import StorageKeyError, check_storage_key
from annotation_app.projects.models import Project
from annotation_app.rounds.models import ModelVersion, Round, TrainingRun, checkpoint_prefix
from medsam2.configs import list_configs


def _same_project(attrs: dict, project: Project, *names: str) -> None:
    errors = {
        name: ["Must belong to the same project."]
        for name in names
        if attrs.get(name) is not None and attrs[name].project_id != project.pk
    }
    if errors:
        raise serializers.ValidationError(errors)


class RoundSerializer(StrictModelSerializer):
    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    model_version = ScopedPrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False, allow_null=True)
    create_only_fields = ("project",)

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
        ]
        read_only_fields = ["id", "number", "status", "opened_at", "closed_at"]
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


class TrainingRunSerializer(StrictModelSerializer):
    project = ScopedPrimaryKeyRelatedField(project_path="", queryset=Project.objects.all())
    round = ScopedPrimaryKeyRelatedField(queryset=Round.objects.all(), required=False, allow_null=True)
    base_model = ScopedPrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False, allow_null=True)

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
        ]
        read_only_fields = [
            "id",
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
        if not isinstance(value, dict):
            raise serializers.ValidationError("hyperparameters must be an object.")
        return value

    def validate(self, attrs):
        _same_project(attrs, attrs["project"], "round", "base_model")
        return attrs
