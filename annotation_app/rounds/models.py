"""Annotation rounds, the model versions they use, and the fine-tuning runs between them."""
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from annotation_app.lib.errors import Conflict
from annotation_app.projects.models import Project


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="model_versions")
    name = models.CharField(max_length=200)
    #: storage key (or absolute path for a checkpoint configured by the operator)
    checkpoint_key = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    config_name = models.CharField(max_length=100, default="medsam2_t512")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    training_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_models"
    )
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(status="active"), name="one_active_model_per_project"
            ),
            models.UniqueConstraint(fields=["project", "name"], name="unique_model_name_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    def activate(self) -> None:
        """Make this the project's active model, retiring the previous one, atomically."""
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
