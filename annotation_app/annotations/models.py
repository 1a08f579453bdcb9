"""Targets (one lesion/organ/object in a case), the prompts placed on them, their mask revisions and
the raw interaction events that timing is computed from.

MaskRevision and InteractionEvent are append-only: the model refuses updates and deletes, the API
offers neither, foreign keys to them PROTECT so a cascade cannot remove them, the database refuses raw
UPDATE and DELETE (triggers on Postgres and on the embedded SQLite), and their author/user keys PROTECT
too, so deleting a user can neither remove nor anonymise them.
"""
import logging

import numpy as np
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone

from annotation_app.annotations.signals import target_accepted
from annotation_app.imaging.models import Case
from annotation_app.lib.errors import Conflict
from annotation_app.lib.maskcodec import decode_mask, encode_mask
from annotation_app.lib.roles import Role, role_at_least
from annotation_app.rounds.models import ModelVersion, Round

log = logging.getLogger(__name__)


class AppendOnlyError(Exception):
    pass


class AppendOnlyModel(models.Model):
    """Rows are inserted once and never changed or deleted."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only and cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only and cannot be deleted")


class TargetStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROPOSED = "proposed", "Proposed"
    CORRECTING = "correcting", "Correcting"
    SUBMITTED = "submitted", "Submitted"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Target(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="targets")
    label = models.CharField(max_length=100)
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.PROTECT, related_name="targets")
    status = models.CharField(max_length=12, choices=TargetStatus.choices, default=TargetStatus.DRAFT)
    key_frame = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    #: where the object is on the key frame, so two lesions on one slice can be told apart:
    #: {"box": [x0, y0, x1, y1]} or {"point": [x, y]} (pixel coordinates), or null
    location = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["case_id", "id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.label} in case {self.case_id} ({self.status})"

    # --- state transitions: conditional updates, so two racing requests cannot both win.
    def _transition(self, allowed: list[str], new_status: str, **fields) -> None:
        changed = Target.objects.filter(pk=self.pk, status__in=allowed).update(
            status=new_status, updated_at=timezone.now(), **fields
        )
        if changed != 1:
            self.refresh_from_db(fields=["status"])
            raise Conflict(f"target is {self.status}; cannot become {new_status}")
        self.refresh_from_db()

    def mark_proposed(self) -> None:
        self._transition([TargetStatus.DRAFT, TargetStatus.PROPOSED, TargetStatus.CORRECTING], TargetStatus.PROPOSED)

    def mark_correcting(self) -> None:
        self._transition(
            [TargetStatus.DRAFT, TargetStatus.PROPOSED, TargetStatus.CORRECTING, TargetStatus.REJECTED],
            TargetStatus.CORRECTING,
        )

    def submit(self) -> None:
        if not self.revisions.exists():
            raise Conflict("a target needs a mask before it can be submitted")
        self._transition(
            [TargetStatus.DRAFT, TargetStatus.PROPOSED, TargetStatus.CORRECTING, TargetStatus.REJECTED],
            TargetStatus.SUBMITTED,
            submitted_at=timezone.now(),
        )

    def accept(self, reviewer, comment: str = "") -> None:
        self._transition(
            [TargetStatus.SUBMITTED],
            TargetStatus.ACCEPTED,
            reviewed_by=reviewer,
            review_comment=comment,
            reviewed_at=timezone.now(),
        )
        # listeners (e.g. PACS auto-send) must not undo an acceptance that already happened
        for receiver, error in target_accepted.send_robust(sender=Target, target=self, reviewer=reviewer):
            if isinstance(error, Exception):
                log.error("target_accepted receiver %s failed for target %s: %s", receiver, self.pk, error)

    def reject(self, reviewer, comment: str = "") -> None:
        self._transition(
            [TargetStatus.SUBMITTED],
            TargetStatus.REJECTED,
            reviewed_by=reviewer,
            review_comment=comment,
            reviewed_at=timezone.now(),
        )

    # --- who may do what (the role checks are the viewsets'; these are the per-target rules)
    def editable_by(self, user, role: str | None) -> bool:
        """Reviewers and above may edit any target (a reviewer's fix); an annotator edits the targets
        assigned to them: those of a case assigned to them, or on an unassigned case the ones they
        created; unless the project lets annotators edit targets not assigned to them."""
        if user.is_superuser or role_at_least(role, Role.REVIEWER):
            return True
        case = self.case
        if case.project.annotators_edit_unassigned:
            return True
        owner = case.assignee_id if case.assignee_id is not None else self.created_by_id
        return owner == user.pk

    def is_work_of(self, user) -> bool:
        """Did `user` annotate this target (placed a prompt or saved a mask other than a review fix)?"""
        if self.prompts.filter(author=user).exists():
            return True
        return self.revisions.filter(author=user).exclude(source=MaskSource.REVIEW).exists()

    @property
    def current_revision(self) -> "MaskRevision | None":
        return self.revisions.order_by("-number").first()

    @property
    def model_proposal(self) -> "MaskRevision | None":
        """The FIRST model revision: what the model proposed before anyone corrected it (later model
        runs are steered by the annotator's own edits, so they already contain them)."""
        return self.revisions.filter(source=MaskSource.MODEL).order_by("number").first()


class PromptKind(models.TextChoices):
    BOX = "box", "Box"
    POINT = "point", "Point"
    MASK = "mask", "Mask"


class Prompt(models.Model):
    """A user's prompt on one frame. payload: box {"box": [x0, y0, x1, y1]}; point {"points": [[x, y], ...],
    "labels": [1, 0, ...]}; mask {"rle": [...], "height": H, "width": W}. Pixel coordinates (x, y)."""

    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="prompts")
    frame = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=PromptKind.choices)
    payload = models.JSONField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    #: a prompt withdrawn by undo stays in the table (nothing is lost) but no longer drives the model
    withdrawn = models.BooleanField(default=False)

    class Meta:
        ordering = ["target_id", "created_at", "id"]


class MaskSource(models.TextChoices):
    MODEL = "model", "Model"
    HUMAN = "human", "Human"
    IMPORT = "import", "Import"
    #: a reviewer's fix of a submitted target
    REVIEW = "review", "Reviewer"


class MaskRevision(AppendOnlyModel):
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    source = models.CharField(max_length=8, choices=MaskSource.choices)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="mask_revisions"
    )
    #: who drew it (none for model and import revisions). PROTECT: an author is part of the record, so
    #: a user with revisions cannot be deleted (deactivate the account instead) and never becomes null.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    #: zlib(packbits(mask cropped to bbox)); see annotation_app.lib.maskcodec
    data = models.BinaryField()
    #: [z0, y0, x0, z1, y1, x1], exclusive upper bounds, in the case's canonical array order
    bbox = models.JSONField()
    shape = models.JSONField()
    voxel_count = models.BigIntegerField()
    #: per-frame model outputs (object score, predicted IoU) for the confidence strip
    frame_scores = models.JSONField(default=dict, blank=True)
    #: the job that wrote this revision; unique so a redelivered task cannot write a second one
    job_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    note = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["target_id", "number"]
        constraints = [models.UniqueConstraint(fields=["target", "number"], name="unique_revision_number")]

    def __str__(self) -> str:
        return f"revision {self.number} of target {self.target_id} ({self.source})"

    def mask(self) -> np.ndarray:
        return decode_mask(bytes(self.data), self.bbox, self.shape)

    @classmethod
    def append(
        cls,
        target: Target,
        mask: np.ndarray,
        source: str,
        author=None,
        model_version: ModelVersion | None = None,
        frame_scores: dict | None = None,
        job_key: str | None = None,
        note: str = "",
    ) -> "MaskRevision":
        """Store `mask` (bool, the case's canonical shape) as the target's next revision.

        Numbers are allocated under a row lock on the target; a racing writer that still collides on
        the unique (target, number) constraint retries once with a fresh number.
        """
        expected = [int(s) for s in target.case.shape[:3]] if target.case.shape else list(mask.shape)
        if list(mask.shape) != expected:
            raise ValueError(f"mask shape {list(mask.shape)} does not match the case shape {expected}")
        encoded = encode_mask(mask)
        for attempt in range(2):
            try:
                with transaction.atomic():
                    Target.objects.select_for_update().filter(pk=target.pk).first()
                    last = cls.objects.filter(target=target).aggregate(n=Max("number"))["n"] or 0
                    parent = cls.objects.filter(target=target, number=last).first() if last else None
                    return cls.objects.create(
                        target=target,
                        number=last + 1,
                        parent=parent,
                        source=source,
                        model_version=model_version,
                        author=author,
                        data=encoded.data,
                        bbox=encoded.bbox,
                        shape=encoded.shape,
                        voxel_count=encoded.voxel_count,
                        frame_scores=frame_scores or {},
                        job_key=job_key,
                        note=note,
                    )
            except IntegrityError:
                if job_key and cls.objects.filter(job_key=job_key).exists():
                    return cls.objects.get(job_key=job_key)
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


class InteractionEvent(AppendOnlyModel):
    """A raw timing event from the browser; idempotent on the client-generated event id."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="events")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    target = models.ForeignKey(Target, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="interaction_events")
    kind = models.CharField(max_length=50)
    client_event_id = models.UUIDField(unique=True)
    client_ts = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["client_ts", "id"]
        indexes = [models.Index(fields=["target", "client_ts"]), models.Index(fields=["user", "client_ts"])]


class SliceComment(models.Model):
    """A reviewer's note pinned to one frame and position of a target; the annotator sees it on a
    rejected target and jumps to it. (x, y) are pixel coordinates of that frame."""

    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    frame = models.PositiveIntegerField()
    x = models.FloatField()
    y = models.FloatField()
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target_id", "frame", "id"]

    def __str__(self) -> str:
        return f"comment on frame {self.frame} of target {self.target_id}"
