"""Serializers for rounds, model versions and training runs."""

from rest_framework import serializers

from annotation_app.lib.serializers import ScopedPrimaryKeyRelatedField, StrictModelSerializer
from annotation_app.projects.models import Project
from annotation_app.rounds.models import ModelVersion, Round, TrainingRun


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


class ModelVersionSerializer(StrictModelSerializer):
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
            "created_at",
        ]
        read_only_fields = ["id", "training_run", "status", "created_at"]
        # Unique names and "one active model" are the database's to enforce (a clash is a 409).
        validators: list = []

    def validate_sha256(self, value: str) -> str:
        if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower())):
            raise serializers.ValidationError("sha256 must be 64 hexadecimal characters.")
        return value.lower()

    def validate_metrics(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("metrics must be an object.")
        return value

    def validate(self, attrs):
        project = attrs.get("project") or self.instance.project
        _same_project(attrs, project, "parent")
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
