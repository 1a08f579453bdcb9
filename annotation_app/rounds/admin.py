from django.contrib import admin

from annotation_app.rounds.models import ModelVersion, Round, TrainingRun


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


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "status", "config_name", "created_at"]
    list_filter = ["status", "project"]
    search_fields = ["name", "checkpoint_key", "sha256"]
    # The status moves only through ModelVersion.activate(), which keeps one active model per project.
    readonly_fields = ["status", "created_at"]


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
    ]
