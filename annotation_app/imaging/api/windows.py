"""GET /api/windows/: the named CT windows of medsam2.window.PRESETS, the only preset table, for the
browser (which keeps no copy). Read-only, the same for every signed-in user."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from medsam2.window import DEFAULT_PRESET, PRESETS


class WindowPresetSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    level = serializers.FloatField(help_text="window centre in real units (HU)")
    width = serializers.FloatField(help_text="window width in real units (HU)")


class WindowPresetsSerializer(serializers.Serializer):
    default = serializers.CharField(help_text="the preset of a CT without a window of its own")
    presets = WindowPresetSerializer(many=True, help_text="in the order the viewer numbers them (keys 1, 2, ...)")


def presets_payload() -> dict:
    return {
        "default": DEFAULT_PRESET,
        "presets": [
            {"name": name, "label": w.label, "level": w.level, "width": w.width} for name, w in PRESETS.items()
        ],
    }


class WindowPresetsView(APIView):
    """The named CT windows (level, width in HU)."""

    @extend_schema(responses=WindowPresetsSerializer, summary="Named CT windows (level, width in HU)")
    def get(self, request):
        return Response(WindowPresetsSerializer(presets_payload()).data)
