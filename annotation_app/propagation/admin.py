import time

from django.contrib import admin, messages

from annotation_app.propagation.models import PropagationJob


def describe_workers(info: dict) -> tuple[list[str], bool]:
    """Lines about the live workers for the admin (as the manager page shows them); False when none runs."""
    waiting = ", ".join(f"{q}: {n} waiting" for q, n in info["queues"].items())
    if not info["workers"]:
        line = f"No worker is running: propagation, ingest and training jobs wait until one starts ({waiting})."
        return [line], False
    lines = []
    now = time.time()
    for w in info["workers"]:
        parts = [w["name"], "queues " + ", ".join(q for q in w["queues"] if not q.startswith("gpu."))]
        if w.get("device"):
            parts.append(w["device"])
        parts.append(f"running job {', '.join(map(str, w['running_jobs']))}" if w.get("running_jobs") else "idle")
        if w.get("started_at"):
            parts.append(f"up {int(now - w['started_at'])} s")
        if w.get("restarts"):
            parts.append(f"restarted {w['restarts']} times")
        lines.append("Worker " + " · ".join(parts))
    lines.append(f"Queues: {waiting}.")
    return lines, True


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

    def changelist_view(self, request, extra_context=None):
        """The job list starts with the workers' state (GET /api/workers/ in words)."""
        from annotation_app.propagation.services import workers_info

        try:
            lines, any_live = describe_workers(workers_info())
        except Exception as exc:  # the list itself must still open
            lines, any_live = [f"Could not read the workers: {exc}"], False
        for line in lines:
            messages.add_message(request, messages.INFO if any_live else messages.WARNING, line)
        return super().changelist_view(request, extra_context)
