"""Annotation rounds, the model versions they use, and the fine-tuning runs between them.

Rows and their race-safe transitions live here; `lifecycle.py` composes them with the annotations a
round freezes (this module is below `annotations` in the import order: a target points at its round).
The cycle: a round opens pinned to the active model version -> annotators correct its proposals and
reviewers accept -> closing freezes a training snapshot (accepted revision ids + content hash) -> a
training run fine-tunes the pinned model on it -> the gate compares candidate and parent on the held-out
cases and activates the candidate or keeps it rejected -> the next round pins the active version.
"""
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from annotation_app.imaging.models import Case
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
    # --- provenance (the registry): what a fine-tuned version was made from and how
    #: the round whose training snapshot trained it, and that snapshot's content hash
    round = models.ForeignKey("Round", null=True, blank=True, on_delete=models.PROTECT, related_name="trained_models")
    snapshot_hash = models.CharField(max_length=64, blank=True, default="")
    #: the resolved fine-tuning settings (every value, defaults included)
    hyperparameters = models.JSONField(default=dict, blank=True)
    #: medsam2 package version and source revision of the code that trained it
    code_version = models.CharField(max_length=100, blank=True, default="")
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
            # a redelivered training task can never register a second version
            models.UniqueConstraint(
                fields=["training_run"], condition=Q(training_run__isnull=False), name="one_model_per_training_run"
            ),
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

    def activate(self, by=None, kind: str = "activate", reason: str = "") -> "ModelActivation":
        """Make this the project's active model, retiring the previous one, atomically; the change is
        logged with who made it (None: the gate) and why."""
        if not self.usable:
            raise Conflict(f"model {self.name} is {self.get_status_display().lower()}; its checkpoint has not loaded")
        with transaction.atomic():
            ModelVersion.objects.select_for_update().filter(project_id=self.project_id).exists()
            previous = ModelVersion.active_for(self.project_id)
            ModelVersion.objects.filter(project_id=self.project_id, status=ModelStatus.ACTIVE).exclude(
                pk=self.pk
            ).update(status=ModelStatus.RETIRED)
            ModelVersion.objects.filter(pk=self.pk).update(status=ModelStatus.ACTIVE)
            record = ModelActivation.objects.create(
                project_id=self.project_id,
                version=self,
                previous=previous if previous is not None and previous.pk != self.pk else None,
                kind=kind,
                by=by if getattr(by, "is_authenticated", False) else None,
                reason=reason[:2000],
            )
        self.refresh_from_db()
        return record

    def roll_back_to(self, by, reason: str) -> "ModelActivation":
        """Make this earlier version active again: only one that has been active before."""
        if self.status == ModelStatus.ACTIVE:
            raise Conflict(f"model {self.name} is already the active model")
        if not ModelActivation.objects.filter(version=self).exists() and self.status != ModelStatus.RETIRED:
            raise Conflict(f"model {self.name} has never been active; promote it instead")
        return self.activate(by=by, kind=ActivationKind.ROLLBACK, reason=reason)

    def reject(self, reason: str) -> None:
        """The gate kept the parent: candidate -> rejected with the reason."""
        ModelVersion.objects.filter(pk=self.pk, status=ModelStatus.CANDIDATE).update(
            status=ModelStatus.REJECTED, status_reason=reason[:2000]
        )
        self.refresh_from_db()

    @classmethod
    def active_for(cls, project_id: int) -> "ModelVersion | None":
        return cls.objects.filter(project_id=project_id, status=ModelStatus.ACTIVE).first()


class ActivationKind(models.TextChoices):
    ACTIVATE = "activate", "Activated"
    GATE = "gate", "Passed the gate"
    PROMOTE = "promote", "Promoted by an admin"
    ROLLBACK = "rollback", "Rolled back by an admin"


class ModelActivation(models.Model):
    """Every change of a project's active model: which version, which it replaced, who and why.

    Rows are only ever created (by ModelVersion.activate); the API lists them and nothing changes them."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="model_activations")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="activations")
    previous = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=ActivationKind.choices, default=ActivationKind.ACTIVATE)
    #: the admin who made the change; None when the gate promoted a candidate
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version} ({self.kind})"


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
    #: frozen when the round closes: {"train": [revision ids], "held_out": [revision ids]}, the accepted
    #: final revisions of this and earlier rounds, split by the project's held-out cases
    snapshot = models.JSONField(default=dict, blank=True)
    #: sha256 over the snapshot's revisions and their mask bytes (see lifecycle.snapshot_hash)
    snapshot_hash = models.CharField(max_length=64, blank=True, default="")

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

    @property
    def allows_model_help(self) -> bool:
        return not self.is_manual_baseline

    def refuse_model_help(self) -> None:
        """Conflict (409) for a model proposal in the manual-baseline round."""
        if self.is_manual_baseline:
            raise Conflict(
                f"round {self.number} is the manual baseline: the model makes no proposals in it, so its "
                "annotation times measure work without model help; draw the mask with brush, eraser and fill"
            )

    # --- transitions: conditional updates, so two racing requests cannot both win
    def _move(self, allowed: list[str], new_status: str, **fields) -> None:
        changed = Round.objects.filter(pk=self.pk, status__in=allowed).update(status=new_status, **fields)
        if changed != 1:
            self.refresh_from_db(fields=["status"])
            raise Conflict(f"round {self.number} is {self.status}; it cannot become {new_status}")
        self.refresh_from_db()

    def freeze(self, snapshot: dict, snapshot_hash: str) -> None:
        """open -> closed with its training snapshot (lifecycle.close_round builds it)."""
        self._move([RoundStatus.OPEN], RoundStatus.CLOSED, closed_at=timezone.now(), snapshot=snapshot,
                   snapshot_hash=snapshot_hash)  # fmt: skip

    def mark_training(self) -> None:
        self._move([RoundStatus.CLOSED, RoundStatus.DONE, RoundStatus.TRAINING], RoundStatus.TRAINING)

    def mark_trained(self, succeeded: bool) -> None:
        """A run ended: done when it produced a version, closed again (ready for another run) if not."""
        Round.objects.filter(pk=self.pk, status=RoundStatus.TRAINING).update(
            status=RoundStatus.DONE if succeeded else RoundStatus.CLOSED
        )
        self.refresh_from_db()


class HeldOutCase(models.Model):
    """A case never trained on: its accepted masks are the evaluation set of every training run.

    Marked by a manager, or by the default split when a round closes (lifecycle.default_held_out)."""

    class Source(models.TextChoices):
        MANAGER = "manager", "Marked by a manager"
        DEFAULT = "default", "Default split"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="held_out_cases")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="held_out")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MANAGER)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "case_id"]

    def __str__(self) -> str:
        return f"case {self.case_id} held out ({self.source})"


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
    # --- live progress, written by the worker every few seconds
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    learning_rate = models.FloatField(null=True, blank=True)
    eta_s = models.FloatField(null=True, blank=True)
    #: the latest validation: {"step", "mean_dice", "mean_nsd"}
    last_validation = models.JSONField(default=dict, blank=True)
    #: points for the charts: [{"step", "loss", "lr"} | {"step", "val_dice"}], thinned to HISTORY_POINTS
    history = models.JSONField(default=list, blank=True)
    # --- which worker runs it, and recovery when that worker dies
    worker = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    #: storage key of the latest resumable checkpoint (models/<project>/runs/<id>/checkpoint.pt)
    checkpoint_key = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")

    HISTORY_POINTS = 2000

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in RUN_FINISHED

    # --- state changes used by the worker (conditional updates: one delivery wins)
    def claim(self, worker: str, stale_after_s: float) -> bool:
        """Take the run: a queued one, or a running one whose worker stopped beating (a redelivery)."""
        now = timezone.now()
        stale = now - timedelta(seconds=stale_after_s)
        changed = (
            TrainingRun.objects.filter(pk=self.pk, cancel_requested=False)
            .filter(Q(status=TrainingStatus.QUEUED) | Q(status=TrainingStatus.RUNNING, heartbeat_at__lt=stale))
            .update(status=TrainingStatus.RUNNING, worker=worker, heartbeat_at=now, attempts=F("attempts") + 1,
                    started_at=Coalesce(F("started_at"), Value(now)))
        )  # fmt: skip
        self.refresh_from_db()
        return changed == 1

    def beat(self, worker: str) -> None:
        TrainingRun.objects.filter(pk=self.pk, status=TrainingStatus.RUNNING, worker=worker).update(
            heartbeat_at=timezone.now()
        )

    def cancel_was_requested(self) -> bool:
        return TrainingRun.objects.filter(pk=self.pk, cancel_requested=True).exists()

    def append_log(self, line: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        TrainingRun.objects.filter(pk=self.pk).update(log=Concat(F("log"), Value(f"{stamp} {line}\n")))

    def finish(self, status: str, error: str = "", metrics: dict | None = None) -> None:
        fields: dict = {"status": status, "finished_at": timezone.now(), "error": error[:5000]}
        if metrics is not None:
            fields["metrics"] = metrics
        if status == TrainingStatus.SUCCEEDED:
            fields["progress"] = 1.0
        TrainingRun.objects.filter(pk=self.pk).exclude(status__in=RUN_FINISHED).update(**fields)
        self.refresh_from_db()

    def request_cancel(self) -> None:
        """Ask the worker to stop (it checks before every step); a queued run is cancelled at once."""
        if self.is_finished:
            raise Conflict(f"training run is {self.status}; nothing to cancel")
        TrainingRun.objects.filter(pk=self.pk).exclude(status__in=RUN_FINISHED).update(cancel_requested=True)
        TrainingRun.objects.filter(pk=self.pk, status=TrainingStatus.QUEUED).update(
            status=TrainingStatus.CANCELLED, finished_at=timezone.now()
        )
        self.refresh_from_db()

    @classmethod
    def stale_running(cls, stale_after_s: float):
        return cls.objects.filter(
            status=TrainingStatus.RUNNING, heartbeat_at__lt=timezone.now() - timedelta(seconds=stale_after_s)
        )


RUN_FINISHED = [TrainingStatus.SUCCEEDED, TrainingStatus.FAILED, TrainingStatus.CANCELLED]
