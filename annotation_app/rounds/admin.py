from django.contrib import admin

from annotation_app.rounds.models import HeldOutCase, ModelActivation, ModelVersion, Round, TrainingRun


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "number",
        "status",
        "model_version",
        "is_manual_baseline",
        "opened_at",
        "closed_at",
    ]
    list_filter = ["status", "project"]
    # status, pin and snapshot move only through rounds/lifecycle.py
    readonly_fields = ["status", "closed_at", "snapshot", "snapshot_hash"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "status", "config_name", "created_at"]
    list_filter = ["status", "project"]
    search_fields = ["name", "checkpoint_key", "sha256"]
    # The status moves only through ModelVersion.activate(), which keeps one active model per project;
    # the checkpoint key is checked by the model's clean() (a storage key of the project, never a path).
    readonly_fields = ["status", "status_reason", "verified_at", "created_at", "round", "snapshot_hash",
                       "hyperparameters", "code_version", "training_run"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "round", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status", "project"]
    readonly_fields = [
        "status",
        "progress",
        "metrics",
        "log",
        "celery_task_id",
        "created_at",
        "started_at",
        "finished_at",
        "step",
        "total_steps",
        "history",
        "worker",
        "heartbeat_at",
        "attempts",
        "checkpoint_key",
        "error",
    ]


@admin.register(HeldOutCase)
class HeldOutCaseAdmin(admin.ModelAdmin):
    list_display = ["case", "project", "source", "marked_by", "created_at"]
    list_filter = ["source", "project"]


@admin.register(ModelActivation)
class ModelActivationAdmin(admin.ModelAdmin):
    """The log of active-model changes: read only (ModelVersion.activate writes it)."""

    list_display = ["version", "previous", "kind", "by", "created_at"]
    list_filter = ["kind", "project"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
