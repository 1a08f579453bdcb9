"""Exports: a case or project export job on the `default` queue (CPU only)."""

from annotation_app.lib import tasks as contract


@contract.contract_task(contract.EXPORT, acks_late=True)
def run_export_job(job_id: int) -> str:
    """Run export job `job_id`; "succeeded", "failed" or "skipped" (gone or already finished)."""
    from annotation_app.exports.services import run_export

    return run_export(int(job_id))
