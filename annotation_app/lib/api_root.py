"""The API's front door: lists the main collections; answers anyone (it reveals no data)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse


@extend_schema(responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request, format=None):
    names = [
        "project",
        "membership",
        "case",
        "round",
        "model-version",
        "training-run",
        "target",
        "prompt",
        "mask-revision",
        "interaction-event",
        "propagation-job",
    ]
    links = {}
    for name in names:
        try:
            links[name] = reverse(f"{name}-list", request=request, format=format)
        except Exception:  # an app that has not registered its routes yet
            continue
    links["schema"] = reverse("schema", request=request, format=format)
    return Response({"name": "MedSAM2 annotation platform", "version": "0.1.0", "endpoints": links})
