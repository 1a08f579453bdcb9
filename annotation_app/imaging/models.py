"""Cases: one image volume or video each, stored in a canonical array plus the original upload.

Canonical array order is (z, y, x) for volumes (slice index first) and (t, y, x[, c]) for videos.
Geometry (spacing, origin, direction) is kept so masks export with the original geometry.
"""
from django.conf import settings
from django.db import models

from annotation_app.lib.redact import redact_paths
from annotation_app.projects.models import Modality, Project


class CaseKind(models.TextChoices):
    VOLUME = "volume", "Volume"
    VIDEO = "video", "Video"


class CaseStatus(models.TextChoices):
    INGESTING = "ingesting", "Ingesting"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    ARCHIVED = "archived", "Archived"


class Case(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="cases")
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=CaseKind.choices, default=CaseKind.VOLUME)
    modality = models.CharField(max_length=2, choices=Modality.choices)
    #: canonical array shape: [D, H, W] for volumes, [T, H, W] or [T, H, W, 3] for videos
    shape = models.JSONField(default=list, blank=True)
    #: voxel size in mm, [z, y, x]
    spacing = models.JSONField(default=list, blank=True)
    #: world position of voxel (0, 0, 0) in mm (LPS, DICOM convention), [x, y, z]
    origin = models.JSONField(default=list, blank=True)
    #: 3x3 direction cosines, row-major, as SimpleITK reports them
    direction = models.JSONField(default=list, blank=True)
    frame_rate = models.FloatField(null=True, blank=True)
    study_uid = models.CharField(max_length=64, blank=True, default="")
    series_uid = models.CharField(max_length=64, blank=True, default="")
    #: storage key of the canonical array, and of the original upload kept for provenance
    image_key = models.CharField(max_length=500, blank=True, default="")
    original_key = models.CharField(max_length=500, blank=True, default="")
    #: metadata useful to the viewer: dtype, value range, default window, source format
    image_meta = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=CaseStatus.choices, default=CaseStatus.INGESTING)
    error = models.TextField(blank=True, default="")
    #: ingest progress, 0..1 (the worker updates it while converting)
    progress = models.FloatField(default=0.0, help_text="ingest progress, 0..1")
    #: the run converting this case (`<celery node>#<pid>`), its last sign of life and how many runs
    #: took it: a claim that stops beating is taken back by another worker (imaging/ingest_recovery.py)
    ingest_worker = models.CharField(max_length=255, blank=True, default="")
    ingest_heartbeat_at = models.DateTimeField(null=True, blank=True)
    ingest_attempts = models.PositiveSmallIntegerField(default=0)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_cases"
    )
    #: who reviews this case's targets (a reviewer or above of the project)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviewing_cases"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "id"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.modality})"

    @property
    def n_frames(self) -> int:
        return int(self.shape[0]) if self.shape else 0

    def open_to_annotator(self, user) -> bool:
        """May an annotator (the lowest role) start new targets here? Yes on their own or an unassigned
        case, or anywhere when the project lets annotators edit what is not assigned to them."""
        return self.assignee_id in (None, user.pk) or self.project.annotators_edit_unassigned

    def mark_ready(self, **geometry) -> bool:
        """Ingest finished: store geometry and flip to ready, only if still ingesting."""
        changed = Case.objects.filter(pk=self.pk, status=CaseStatus.INGESTING).update(
            status=CaseStatus.READY, **geometry
        )
        self.refresh_from_db()
        return changed == 1

    def mark_failed(self, error: str) -> None:
        error = redact_paths(error)  # users read it: no server folders
        Case.objects.filter(pk=self.pk).update(status=CaseStatus.FAILED, error=error[:5000])
        self.refresh_from_db()
