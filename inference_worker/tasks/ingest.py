"""Ingest: convert an uploaded image into a case's canonical array (default queue, CPU only)."""

from celery import shared_task


@shared_task(name="inference_worker.tasks.ingest.ingest_upload", acks_late=True)
def ingest_upload(case_id: int) -> str:
    """Convert case `case_id`; returns "ready", "failed" or "skipped" (already done / gone).

    Idempotent, so a redelivered task after a worker crash is harmless."""
    from annotation_app.imaging.ingest import run_ingest

    return run_ingest(int(case_id))
