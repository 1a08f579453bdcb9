"""The stored time of each target: a cache of `measure()` over the target's events and jobs plus the
proposal-vs-final mask comparison, recomputed whenever its inputs changed (see service.py).

Nothing here is a source of truth: every field can be rebuilt from InteractionEvent, PropagationJob
and MaskRevision rows, which are append-only or change only by their own state transitions.
"""

from django.conf import settings
from django.db import models

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.projects.models import Project
from annotation_app.rounds.models import ModelVersion, Round


class TargetTiming(models.Model):
    target = models.OneToOneField(Target, on_delete=models.CASCADE, primary_key=True, related_name="timing")
    # copied from the target and its case so reports filter and group without joins
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="target_timings")
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    modality = models.CharField(max_length=2)
    label = models.CharField(max_length=100)
    #: "volume" or "video": videos are also reported per frame
    case_kind = models.CharField(max_length=10)
    status = models.CharField(max_length=12)
    #: who submitted it (the last `submit` event), else the last human editor, else its creator
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # --- time (seconds); time_s = prompting + waiting + correcting, the "time per lesion"
    time_s = models.FloatField(default=0.0)
    per_frame_s = models.FloatField(null=True, blank=True)
    prompting_s = models.FloatField(default=0.0)
    waiting_s = models.FloatField(default=0.0)
    correcting_s = models.FloatField(default=0.0)
    reviewing_s = models.FloatField(default=0.0)
    #: time left out: gaps over the idle threshold / after `idle`, and spans with the page hidden
    idle_left_out_s = models.FloatField(default=0.0)
    hidden_left_out_s = models.FloatField(default=0.0)

    # --- counts
    n_prompts = models.PositiveIntegerField(default=0)
    n_propagations = models.PositiveIntegerField(default=0)
    n_strokes = models.PositiveIntegerField(default=0)
    n_undos = models.PositiveIntegerField(default=0)
    n_redos = models.PositiveIntegerField(default=0)
    #: strokes + undos + redos: every change of the mask by hand
    n_edits = models.PositiveIntegerField(default=0)
    n_events = models.PositiveIntegerField(default=0)
    n_duplicates = models.PositiveIntegerField(default=0)
    #: frames with mask in the final mask
    n_frames = models.PositiveIntegerField(default=0)
    #: frames where the final mask differs from the model's first proposal (all frames without one)
    n_corrected_frames = models.PositiveIntegerField(default=0)
    #: corrected frames / frames with mask in the proposal or the final mask (1.0 without a proposal)
    edit_fraction = models.FloatField(null=True, blank=True)

    # --- the model's first proposal against the final mask
    first_proposal = models.ForeignKey(MaskRevision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    final_revision = models.ForeignKey(MaskRevision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: the model that made the first proposal (a ModelVersion's name, or the worker's model name)
    model_name = models.CharField(max_length=200, blank=True, default="")
    voxels_changed = models.BigIntegerField(null=True, blank=True)
    dice = models.FloatField(null=True, blank=True)
    hd95_mm = models.FloatField(null=True, blank=True)

    #: {"users": {id: {phase: s}}, "clock_offsets_s": {id: s}, "slices": {frame: provenance}}
    details = models.JSONField(default=dict, blank=True)
    first_event_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    #: what the row was computed from; a different fingerprint means recompute (service.refresh)
    fingerprint = models.CharField(max_length=200, default="")
    #: the revisions the mask comparison was made from (skip the masks when only events changed)
    masks_fingerprint = models.CharField(max_length=100, default="")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["target_id"]
        indexes = [models.Index(fields=["project", "round"]), models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"timing of target {self.target_id}: {self.time_s:.1f} s"
