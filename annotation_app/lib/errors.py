"""One JSON shape for every API error: {"detail": "...", "errors": {...}} with a 4xx status."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from annotation_app.lib.storage_full import REQUEST_REASON, is_storage_full


class Conflict(Exception):
    """A request that contradicts the current state of a row (a 409)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def json_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
    if isinstance(exc, Conflict):
        set_rollback()
        return Response({"detail": exc.detail}, status=status.HTTP_409_CONFLICT)
    if type(exc).__name__ == "AppendOnlyError":  # annotations.models; not imported here (cycle)
        set_rollback()
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if is_storage_full(exc):  # ENOSPC / EDQUOT: lib/storage_full.py
        set_rollback()
        return Response({"detail": REQUEST_REASON, "code": "storage_full"}, status=507)
    if isinstance(exc, IntegrityError):
        set_rollback()
        return Response(
            {"detail": "The request conflicts with existing data.", "errors": {"reason": [_first_line(exc)]}},
            status=status.HTTP_409_CONFLICT,
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError) and not (isinstance(response.data, dict) and "detail" in response.data):
        response.data = {"detail": "Invalid request.", "errors": response.data}
    return response


def csrf_failure(request, reason: str = ""):
    """Django's CSRF refusal as JSON (settings.CSRF_FAILURE_VIEW), so the browser app can show why."""
    from django.http import JsonResponse

    return JsonResponse(
        {"detail": f"CSRF check failed: {reason}. Send the csrftoken cookie's value in X-CSRFToken."},
        status=403,
    )


def not_found(request, exception=None):
    """404 for paths no route matches (urls.handler404): JSON under /api/, Django's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No API endpoint at {request.path}."}, status=404)
    return page_not_found(request, exception)


def server_error(request):
    """500 for unhandled errors (urls.handler500, used when DEBUG is off): JSON under /api/ with no
    traceback, no setting and no server path in it; Django's plain page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import server_error as django_server_error

    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Internal server error. It has been logged; please tell the administrators if it persists."},
            status=500,
        )
    return django_server_error(request)
