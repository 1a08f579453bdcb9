"""Model registry and fine-tuning tasks: a registered checkpoint's strict load (default queue) and a
training run (training queue, inference_worker/training.py)."""

import os

from django.conf import settings

from annotation_app.lib import tasks as contract
from inference_worker.registry import verify_version
from inference_worker.training import run_training


@contract.contract_task(contract.VERIFY_CHECKPOINT, acks_late=True)
def verify_checkpoint(version_id: int) -> str:
    """Load version `version_id`'s checkpoint strictly: "candidate", "rejected" or "skipped"."""
    return verify_version(int(version_id))


@contract.contract_task(
    contract.FINE_TUNE,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # a run may take hours: its own limits instead of the app's default hour
    time_limit=settings.TRAINING_TIME_LIMIT_S + 300,
    soft_time_limit=settings.TRAINING_TIME_LIMIT_S,
)
def fine_tune(self, run_id: int) -> dict:
    """Train, evaluate and gate training run `run_id` (idempotent: a redelivery resumes or skips)."""
    return run_training(int(run_id), f"{self.request.hostname}#{os.getpid()}")
