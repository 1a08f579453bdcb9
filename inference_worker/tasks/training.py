"""Model registry and fine-tuning tasks: a registered checkpoint's strict load (default queue)."""

from annotation_app.lib import tasks as contract
from inference_worker.registry import verify_version


@contract.contract_task(contract.VERIFY_CHECKPOINT, acks_late=True)
def verify_checkpoint(version_id: int) -> str:
    """Load version `version_id`'s checkpoint strictly: "candidate", "rejected" or "skipped"."""
    return verify_version(int(version_id))
