"""Propagation jobs: a target's prompts turned into a mask by a worker running MedSAM2.

Workers claim a job with a conditional update (only a queued job, or a running job whose heartbeat is
stale, can be claimed), record progress and a heartbeat on the row, and check `cancel_requested`
every frame. The revision a job writes carries the job's idempotency key, so a redelivered task
never writes a second one.
"""
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.lib.redact import redact_paths
from annotation_app.rounds.models import ModelVersion


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]


class JobKind(models.TextChoices):
    KEY_FRAME = "key_frame", "Key frame only"
    PROPAGATE = "propagate", "Full propagation"


class Direction(models.TextChoices):
    BOTH = "both", "Both"
    FORWARD = "forward", "Forward"
    BACKWARD = "backward", "Backward"


class PropagationJob(models.Model):
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=10, choices=JobKind.choices, default=JobKind.PROPAGATE)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.BOTH)
    #: [first, last] frame indices (inclusive) or null for the whole case
    frame_range = models.JSONField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    frames_done = models.PositiveIntegerField(default=0)
    frames_total = models.PositiveIntegerField(default=0)
    celery_task_id = models.CharField(max_length=64, blank=True, default="")
    #: the Celery queue the task was last sent to (`gpu` or a worker's own `gpu.<node>`)
    queue = models.CharField(max_length=200, blank=True, default="")
    idempotency_key = models.CharField(max_length=100, unique=True)
    device = models.CharField(max_length=40, blank=True, default="")
    worker = models.CharField(max_length=200, blank=True, default="")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    model_name = models.CharField(max_length=200, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    #: {"queued_s": .., "load_s": .., "encode_s": .., "first_frame_s": .., "total_s": ..}
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    #: what the job did to the target's tracking session (inference_worker.sessions): a worker that
    #: restarted replays these ops to rebuild the session identically
    session_ops = models.JSONField(default=dict, blank=True)
    result_revision = models.ForeignKey(
        MaskRevision, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"job {self.pk} for target {self.target_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    # --- state changes used by the worker
    def claim(self, worker: str, device: str, stale_after_s: int = 60) -> bool:
        """Take the job for this worker; True only for the one caller that won it."""
        now = timezone.now()
        stale = now - timedelta(seconds=stale_after_s)
        changed = (
            PropagationJob.objects.filter(pk=self.pk)
            .filter(Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale))
            .filter(cancel_requested=False)
            .update(
                status=JobStatus.RUNNING,
                worker=worker,
                device=device,
                started_at=now,
                heartbeat_at=now,
                attempts=F("attempts") + 1,
            )
        )
        self.refresh_from_db()
        return changed == 1

    def record_progress(self, frames_done: int, frames_total: int) -> bool:
        """Save progress and beat the heart; returns False when cancellation was requested."""
        PropagationJob.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(
            frames_done=frames_done,
            frames_total=frames_total,
            progress=(frames_done / frames_total) if frames_total else 0.0,
            heartbeat_at=timezone.now(),
        )
        return not PropagationJob.objects.filter(pk=self.pk, cancel_requested=True).exists()

    def succeed(self, revision: MaskRevision, timings: dict) -> None:
        PropagationJob.objects.filter(pk=self.pk).exclude(status__in=FINISHED).update(
            status=JobStatus.SUCCEEDED,
            result_revision=revision,
            progress=1.0,
            timings=timings,
            finished_at=timezone.now(),
        )
        self.refresh_from_db()

    def fail(self, error: str) -> None:
        error = redact_paths(error)  # users read it: no server folders (image files, checkpoints)
        PropagationJob.objects.filter(pk=self.pk).exclude(status__in=FINISHED).update(
            status=JobStatus.FAILED, error=error[:5000], finished_at=timezone.now()
        )
        self.refresh_from_db()

    def mark_cancelled(self) -> None:
        PropagationJob.objects.filter(pk=self.pk).exclude(status__in=FINISHED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now()
        )
        self.refresh_from_db()

    def request_cancel(self) -> None:
        """Ask the worker to stop; a job that has not started is cancelled at once."""
        PropagationJob.objects.filter(pk=self.pk).exclude(status__in=FINISHED).update(cancel_requested=True)
        PropagationJob.objects.filter(pk=self.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now()
        )
        self.refresh_from_db()

    @classmethod
    def stale_running(cls, stale_after_s: int = 60):
        return cls.objects.filter(
            status=JobStatus.RUNNING, heartbeat_at__lt=timezone.now() - timedelta(seconds=stale_after_s)
        )
