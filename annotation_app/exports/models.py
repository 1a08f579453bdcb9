"""Export jobs: a case (NIfTI, DICOM SEG, COCO) or a whole project (zip) exported on the `default`
queue, with progress on the row and the file kept in storage for download.

State: queued -> running -> succeeded | failed. Transitions are conditional updates, so a redelivered
task (worker killed mid-export) restarts a running job but never touches a finished one.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from annotation_app.imaging.models import Case
from annotation_app.lib.redact import redact_paths
from annotation_app.projects.models import Project

CASE_FORMATS = ("nifti", "dicom-seg", "coco")
PROJECT_FORMAT = "project-zip"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE = (ExportStatus.QUEUED, ExportStatus.RUNNING)


class ExportJob(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    #: the case exported; null for a project export
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=16)
    #: only targets in these statuses (empty: all)
    statuses = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=12, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    error = models.TextField(blank=True, default="")
    result_key = models.CharField(max_length=500, blank=True, default="")
    filename = models.CharField(max_length=200, blank=True, default="")
    content_type = models.CharField(max_length=100, blank=True, default="")
    size = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        what = f"case {self.case_id}" if self.case_id else f"project {self.project_id}"
        return f"{self.format} export of {what} ({self.status})"

    def claim(self) -> bool:
        """queued (or running, when a killed worker's task is redelivered) -> running; False if finished."""
        changed = ExportJob.objects.filter(pk=self.pk, status__in=ACTIVE).update(
            status=ExportStatus.RUNNING, started_at=timezone.now(), progress=0.0, error=""
        )
        self.refresh_from_db()
        return changed == 1

    def set_progress(self, fraction: float) -> None:
        value = max(0.0, min(1.0, float(fraction)))
        ExportJob.objects.filter(pk=self.pk, status=ExportStatus.RUNNING).update(progress=value)
        self.progress = value

    def succeed(self, key: str, filename: str, content_type: str, size: int) -> None:
        ExportJob.objects.filter(pk=self.pk, status=ExportStatus.RUNNING).update(
            status=ExportStatus.SUCCEEDED,
            progress=1.0,
            result_key=key,
            filename=filename,
            content_type=content_type,
            size=size,
            finished_at=timezone.now(),
        )
        self.refresh_from_db()

    def fail(self, message: str) -> None:
        message = redact_paths(message)  # users read it: no server folders
        ExportJob.objects.filter(pk=self.pk, status__in=ACTIVE).update(
            status=ExportStatus.FAILED, error=message[:5000], finished_at=timezone.now()
        )
        self.refresh_from_db()

    def duplicate_of(self) -> "ExportJob | None":
        """An active job for the same thing (the second request gets 409, not a second export)."""
        same = ExportJob.objects.filter(
            project_id=self.project_id, case_id=self.case_id, format=self.format, status__in=ACTIVE
        )
        return same.exclude(pk=self.pk).order_by("id").first()
