"""Annotation rounds, the model versions they use, and the fine-tuning runs between them."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from annotation_app.lib.errors import Conflict
from annotation_app.lib.storage_keys import StorageKeyError, check_storage_key
from annotation_app.projects.models import Project


class ModelStatus(models.TextChoices):
    #: checkpoint stored, waiting for a worker's strict load
    PENDING = "pending", "Verifying"
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"
    #: the checkpoint did not load, or the gate kept the parent (the reason is in status_reason)
    REJECTED = "rejected", "Rejected"


def checkpoint_prefix(project_id: int) -> str:
    """Where a project's checkpoints live in storage: uploads, training runs and their checkpoints."""
    return f"models/{project_id}/"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="model_versions")
    name = models.CharField(max_length=200)
    #: storage key under models/<project>/ (never a server path; "" only for a version refused as such)
    checkpoint_key = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    config_name = models.CharField(max_length=100, default="medsam2_t512")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    training_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_models"
    )
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE)
    #: why a version is rejected (a checkpoint that does not load, the gate's decision)
    status_reason = models.TextField(blank=True, default="")
    #: when a worker loaded the checkpoint strictly (a training run's own output, or an upload's check)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(status="active"), name="one_active_model_per_project"
            ),
            models.UniqueConstraint(fields=["project", "name"], name="unique_model_name_per_project"),
            # Defence in depth for rows written around the API: no server path is ever stored.
            models.CheckConstraint(
                condition=(
                    Q(checkpoint_key__startswith=Concat(Value("models/"), Cast("project_id", CharField()), Value("/")))
                    & ~Q(checkpoint_key__contains="..")
                    & ~Q(checkpoint_key__contains="\\")
                )
                | Q(checkpoint_key="", status="rejected"),
                name="checkpoint_key_is_a_storage_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    def clean(self) -> None:
        super().clean()
        if self.project_id is not None:
            try:
                check_storage_key(self.checkpoint_key, checkpoint_prefix(self.project_id))
            except StorageKeyError as exc:
                raise ValidationError({"checkpoint_key": str(exc)}) from None

    @property
    def usable(self) -> bool:
        """A worker loaded its checkpoint strictly (pending and refused ones never run)."""
        return self.verified_at is not None

    def verified(self, sha256: str, metrics: dict | None = None) -> bool:
        """The worker's strict load succeeded: pending -> candidate with the file's checksum."""
        changed = ModelVersion.objects.filter(pk=self.pk, status=ModelStatus.PENDING).update(
            status=ModelStatus.CANDIDATE,
            sha256=sha256,
            metrics={**self.metrics, **(metrics or {})},
            verified_at=timezone.now(),
        )
        self.refresh_from_db()
        return changed == 1

    def refuse(self, reason: str) -> bool:
        """The checkpoint did not load: pending -> rejected with the reason."""
        changed = ModelVersion.objects.filter(pk=self.pk, status=ModelStatus.PENDING).update(
            status=ModelStatus.REJECTED, status_reason=reason[:2000]
        )
        self.refresh_from_db()
        return changed == 1

    def activate(self) -> None:
        """Make this the project's active model, retiring the previous one, atomically."""
        if not self.usable:
            raise Conflict(f"model {self.name} is {self.get_status_display().lower()}; its checkpoint has not loaded")
        with transaction.atomic():
            ModelVersion.objects.select_for_update().filter(project_id=self.project_id).exists()
            ModelVersion.objects.filter(project_id=self.project_id, status=ModelStatus.ACTIVE).exclude(
                pk=self.pk
            ).update(status=ModelStatus.RETIRED)
            ModelVersion.objects.filter(pk=self.pk).update(status=ModelStatus.ACTIVE)
        self.refresh_from_db()

    @classmethod
    def active_for(cls, project_id: int) -> "ModelVersion | None":
        return cls.objects.filter(project_id=project_id, status=ModelStatus.ACTIVE).first()


class RoundStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    TRAINING = "training", "Training"
    DONE = "done", "Done"


class Round(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="rounds")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=RoundStatus.choices, default=RoundStatus.OPEN)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="rounds"
    )
    #: a round annotated without model help, the baseline for time-per-lesion reductions
    is_manual_baseline = models.BooleanField(default=False)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="unique_round_number"),
            models.UniqueConstraint(fields=["project"], condition=Q(status="open"), name="one_open_round_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project} round {self.number} ({self.status})"

    @classmethod
    def current_for(cls, project_id: int) -> "Round | None":
        return cls.objects.filter(project_id=project_id, status=RoundStatus.OPEN).first()

    @classmethod
    def next_number(cls, project_id: int) -> int:
        last = cls.objects.filter(project_id=project_id).order_by("-number").values_list("number", flat=True).first()
        return (last or 0) + 1

    def close(self) -> None:
        changed = Round.objects.filter(pk=self.pk, status=RoundStatus.OPEN).update(
            status=RoundStatus.CLOSED, closed_at=timezone.now()
        )
        if changed != 1:
            raise Conflict(f"round {self.number} is not open")
        self.refresh_from_db()


class TrainingStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class TrainingRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="training_runs")
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.PROTECT, related_name="training_runs")
    base_model = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="training_runs_based_on"
    )
    status = models.CharField(max_length=10, choices=TrainingStatus.choices, default=TrainingStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    hyperparameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True, default="")
    celery_task_id = models.CharField(max_length=64, blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"
