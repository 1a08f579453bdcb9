"""PACS round trip: DICOMweb connections, series imports and DICOM SEG sends.

A `DicomWebConnection` holds QIDO-RS / WADO-RS / STOW-RS URLs and credentials; only a site admin
(superuser) creates or changes one, so a project member can never point the server at an arbitrary URL.
It belongs to one project or, with no project, to every project (site-wide). Credentials are stored
here and nowhere else: serializers never return them and `__repr__`/`__str__` leave them out.

A `PacsImport` is one series fetched over WADO-RS into the ordinary ingest path; a series is imported
once per project (a partial unique constraint on live rows; a failed import may be tried again).

A `SegSend` is one accepted mask revision of one target sent as a DICOM SEG instance over STOW-RS to
one connection; its UIDs are fixed when the row is made, so a retry re-sends the same instance and a
later accepted revision gets a row (and an instance) of its own, never overwriting the first.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.imaging.models import Case
from annotation_app.lib.redact import redact_paths
from annotation_app.projects.models import Project


class DicomWebConnection(models.Model):
    name = models.CharField(max_length=200)
    #: None: site-wide, usable by every project
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="dicomweb_connections"
    )
    qido_url = models.URLField(max_length=500)
    wado_url = models.URLField(max_length=500)
    stow_url = models.URLField(max_length=500, blank=True, default="")
    username = models.CharField(max_length=200, blank=True, default="")
    password = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.qido_url})"

    def __repr__(self) -> str:
        return f"<DicomWebConnection {self.pk} {self.name!r}>"

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)

    def usable_by(self, project_id: int) -> bool:
        return self.project_id is None or self.project_id == project_id

    @classmethod
    def for_project(cls, project_id: int):
        return cls.objects.filter(Q(project__isnull=True) | Q(project_id=project_id))


#: a claimed row whose worker has not written for this long is taken to be abandoned (the worker died;
#: Celery redelivers its message after acks_late) and may be claimed again
STALE_AFTER = timedelta(minutes=10)


def _claimable(status_queued: str, status_running: str) -> Q:
    return Q(status=status_queued) | Q(status=status_running, heartbeat_at__lt=timezone.now() - STALE_AFTER)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class PacsImport(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pacs_imports")
    connection = models.ForeignKey(DicomWebConnection, on_delete=models.PROTECT, related_name="imports")
    study_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64)
    description = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    #: 0..0.5 while instances arrive over WADO-RS, 0.5..1 while the ingest converts them
    progress = models.FloatField(default=0.0)
    n_instances = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: the claiming worker's last sign of life (claim and each progress step)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "series_uid"],
                condition=~Q(status="failed"),
                name="pacs_series_imported_once_per_project",
            )
        ]

    def __str__(self) -> str:
        return f"import of series {self.series_uid} into project {self.project_id} ({self.status})"

    def claim(self) -> bool:
        """queued (or abandoned running) -> running; False if another delivery of the task has it."""
        changed = (
            PacsImport.objects.filter(pk=self.pk)
            .filter(_claimable(JobStatus.QUEUED, JobStatus.RUNNING))
            .update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
        )
        self.refresh_from_db()
        return changed == 1

    def set_progress(self, fraction: float, **fields) -> None:
        PacsImport.objects.filter(pk=self.pk).update(
            progress=round(float(fraction), 3), heartbeat_at=timezone.now(), **fields
        )

    def finish(self, case: Case) -> None:
        PacsImport.objects.filter(pk=self.pk).update(
            status=JobStatus.SUCCEEDED, case=case, progress=1.0, finished_at=timezone.now()
        )
        self.refresh_from_db()

    def fail(self, reason: str) -> None:
        reason = redact_paths(reason)  # users read it: no server folders
        PacsImport.objects.filter(pk=self.pk).update(
            status=JobStatus.FAILED, error=reason[:5000], finished_at=timezone.now()
        )
        self.refresh_from_db()


class SendStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class SegSend(models.Model):
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="seg_sends")
    revision = models.ForeignKey(MaskRevision, on_delete=models.PROTECT, related_name="seg_sends")
    connection = models.ForeignKey(DicomWebConnection, on_delete=models.PROTECT, related_name="seg_sends")
    status = models.CharField(max_length=8, choices=SendStatus.choices, default=SendStatus.QUEUED)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    #: fixed at creation: a retry re-sends the same instance, a new revision gets new ones
    sop_instance_uid = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64)
    study_instance_uid = models.CharField(max_length=64, blank=True, default="")
    automatic = models.BooleanField(default=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["revision", "connection"], name="pacs_one_seg_per_revision_and_connection")
        ]

    def __str__(self) -> str:
        return f"SEG of target {self.target_id} revision {self.revision_id} ({self.status})"

    def claim(self) -> bool:
        """queued (or abandoned sending) -> sending, one attempt more; False if another delivery has it.
        A re-sent instance keeps its SOP Instance UID, so the PACS stores it once."""
        changed = (
            SegSend.objects.filter(pk=self.pk)
            .filter(_claimable(SendStatus.QUEUED, SendStatus.SENDING))
            .update(status=SendStatus.SENDING, attempts=F("attempts") + 1, heartbeat_at=timezone.now())
        )
        self.refresh_from_db()
        return changed == 1

    def requeue(self) -> bool:
        """failed -> queued (a retry); False if it is not failed."""
        changed = SegSend.objects.filter(pk=self.pk, status=SendStatus.FAILED).update(
            status=SendStatus.QUEUED, error=""
        )
        self.refresh_from_db()
        return changed == 1

    def mark_sent(self) -> None:
        SegSend.objects.filter(pk=self.pk).update(status=SendStatus.SENT, error="", sent_at=timezone.now())
        self.refresh_from_db()

    def mark_failed(self, reason: str) -> None:
        reason = redact_paths(reason)  # users read it: no server folders
        SegSend.objects.filter(pk=self.pk).update(status=SendStatus.FAILED, error=reason[:5000])
        self.refresh_from_db()
