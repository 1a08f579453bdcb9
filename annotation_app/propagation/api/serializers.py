"""Serializers for propagation jobs and the body of POST /api/targets/{id}/propagate/."""

from rest_framework import serializers

from annotation_app.lib.serializers import StrictSerializer
from annotation_app.propagation.models import Direction, JobKind, PropagationJob


class PropagationJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = PropagationJob
        fields = [
            "id",
            "target",
            "kind",
            "status",
            "direction",
            "frame_range",
            "progress",
            "frames_done",
            "frames_total",
            "device",
            "worker",
            "queue",
            "model_name",
            "model_version",
            "error",
            "result_revision",
            "timings",
            "cancel_requested",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class PropagateRequestSerializer(StrictSerializer):
    """kind: "propagate" (default; the key frame is published first) or "key_frame" (prompted frames
    only); direction from the key frame; frame_range [first, last] inclusive (default: all frames)."""

    kind = serializers.ChoiceField(choices=JobKind.choices, default=JobKind.PROPAGATE)
    direction = serializers.ChoiceField(choices=Direction.choices, default=Direction.BOTH)
    frame_range = serializers.ListField(
        child=serializers.IntegerField(min_value=0),
        min_length=2,
        max_length=2,
        required=False,
        allow_null=True,
    )

    def validate_frame_range(self, value):
        if value is not None and value[0] > value[1]:
            raise serializers.ValidationError("first frame must not come after the last.")
        return value
