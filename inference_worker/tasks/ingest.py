"""Ingest: convert an uploaded image into a case's canonical array (default queue, CPU only)."""

from annotation_app.lib import tasks as contract


@contract.contract_task(contract.INGEST, acks_late=True)
def ingest_upload(case_id: int) -> str:
    """Convert case `case_id`; returns "ready", "failed" or "skipped" (already done / gone).

    Idempotent, so a redelivered task after a worker crash is harmless."""
    from annotation_app.imaging.ingest import run_ingest

    return run_ingest(int(case_id))
