from django.contrib import admin

from annotation_app.propagation.models import PropagationJob


@admin.register(PropagationJob)
class PropagationJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "target",
        "kind",
        "status",
        "progress",
        "device",
        "worker",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind", "device"]
    # Workers own these fields; the admin only watches.
    readonly_fields = [
        "status",
        "progress",
        "frames_done",
        "frames_total",
        "celery_task_id",
        "idempotency_key",
        "device",
        "worker",
        "attempts",
        "timings",
        "error",
        "result_revision",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    ]
    raw_id_fields = ["target", "model_version", "requested_by"]
