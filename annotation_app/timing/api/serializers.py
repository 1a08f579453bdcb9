"""Read-only serializers for stored timings and the round report (the report's shape, for the schema)."""

from rest_framework import serializers

from annotation_app.timing.models import TargetTiming

LIST_FIELDS = [
    "id",
    "target",
    "case",
    "case_name",
    "project",
    "round",
    "round_number",
    "modality",
    "label",
    "case_kind",
    "status",
    "submitted_by",
    "submitted_by_username",
    "time_s",
    "per_frame_s",
    "prompting_s",
    "waiting_s",
    "correcting_s",
    "reviewing_s",
    "idle_left_out_s",
    "hidden_left_out_s",
    "n_prompts",
    "n_propagations",
    "n_strokes",
    "n_undos",
    "n_redos",
    "n_edits",
    "n_events",
    "n_duplicates",
    "n_frames",
    "n_corrected_frames",
    "edit_fraction",
    "first_proposal",
    "final_revision",
    "model_version",
    "model_name",
    "voxels_changed",
    "dice",
    "hd95_mm",
    "first_event_at",
    "last_event_at",
    "computed_at",
]


class TargetTimingSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="target_id", read_only=True)
    case = serializers.IntegerField(source="target.case_id", read_only=True)
    case_name = serializers.CharField(source="target.case.name", read_only=True)
    round_number = serializers.IntegerField(source="round.number", read_only=True, allow_null=True, default=None)
    submitted_by_username = serializers.CharField(
        source="submitted_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = TargetTiming
        fields = LIST_FIELDS
        read_only_fields = fields


class SliceProvenanceSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["model", "human", "import"])
    user = serializers.IntegerField(allow_null=True, help_text="the person whose edit made the slice as it is")
    model = serializers.CharField(allow_null=True, help_text="the model that made it, when the model did")
    touched_by = serializers.ListField(child=serializers.IntegerField(), help_text="everyone who changed it")
    in_final = serializers.BooleanField(help_text="the final mask covers this slice")


class TargetTimingDetailSerializer(TargetTimingSerializer):
    slices = serializers.DictField(
        source="details.slices", child=SliceProvenanceSerializer(), read_only=True, help_text="per frame index"
    )
    per_user = serializers.DictField(
        source="details.users",
        child=serializers.DictField(child=serializers.FloatField()),
        read_only=True,
        help_text="seconds per phase for each person (user id)",
    )
    clock_offsets_s = serializers.DictField(
        source="details.clock_offsets_s", child=serializers.FloatField(), read_only=True
    )

    class Meta(TargetTimingSerializer.Meta):
        fields = [*LIST_FIELDS, "slices", "per_user", "clock_offsets_s"]
        read_only_fields = fields


# --- the report's shape (documentation for the OpenAPI schema; the view returns report.build())
class SummarySerializer(serializers.Serializer):
    n = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    q1 = serializers.FloatField(allow_null=True)
    q3 = serializers.FloatField(allow_null=True)
    iqr = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class DistributionSerializer(SummarySerializer):
    values = serializers.ListField(child=serializers.FloatField(), help_text="every value, ascending")


class PhasesSerializer(serializers.Serializer):
    prompting = serializers.FloatField()
    waiting = serializers.FloatField()
    correcting = serializers.FloatField()
    reviewing = serializers.FloatField()


class AnnotatorStatsSerializer(serializers.Serializer):
    user = serializers.IntegerField(allow_null=True)
    username = serializers.CharField()
    n = serializers.IntegerField()
    time_s = DistributionSerializer()
    edit_fraction = serializers.FloatField(allow_null=True)
    dice = DistributionSerializer()


class GroupSerializer(serializers.Serializer):
    modality = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.ChoiceField(choices=["volume", "video"])
    unit = serializers.ChoiceField(choices=["lesion", "frame"], help_text="time_s is per lesion, or per frame")
    n = serializers.IntegerField()
    time_s = DistributionSerializer()
    reduction_pct = serializers.FloatField(allow_null=True, help_text="mean time vs the manual-baseline round, %")
    reduction_median_pct = serializers.FloatField(allow_null=True)
    edit_fraction = serializers.FloatField(allow_null=True)
    dice = DistributionSerializer(help_text="Dice(first proposal, final)")
    hd95_mm = SummarySerializer()
    voxels_changed_mean = serializers.FloatField(allow_null=True)
    phases_mean_s = PhasesSerializer()
    edits_mean = serializers.FloatField(allow_null=True)
    annotators = AnnotatorStatsSerializer(many=True)


class RoundReportSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    number = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    is_manual_baseline = serializers.BooleanField()
    model_version = serializers.CharField(allow_null=True)
    models_used = serializers.ListField(child=serializers.CharField())
    n = serializers.IntegerField()
    groups = GroupSerializer(many=True)


class ReportProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    idle_threshold_s = serializers.IntegerField()


class AnnotatorOptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class ReportOptionsSerializer(serializers.Serializer):
    modalities = serializers.ListField(child=serializers.CharField())
    labels = serializers.ListField(child=serializers.CharField())
    annotators = AnnotatorOptionSerializer(many=True)


class TimingReportSerializer(serializers.Serializer):
    project = ReportProjectSerializer()
    filters = serializers.DictField()
    baseline_round = serializers.IntegerField(allow_null=True)
    rounds = RoundReportSerializer(many=True)
    options = ReportOptionsSerializer()
