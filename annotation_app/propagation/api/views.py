"""Propagation jobs over REST: start one for a target, follow it (poll, server-sent events, partial
frames), cancel it; list the workers and queue depths.

- POST /api/targets/{id}/propagate/ {kind?, direction?, frame_range?} -> 202 job; 409 when the same job
  (same prompts, kind, direction, range) is already queued or running, or the target is locked.
- GET /api/propagation-jobs/ (?target=&status=&kind=) and /{id}/.
- GET /api/propagation-jobs/{id}/events/: text/event-stream; an `update` event (the job as JSON, plus
  `cursor`, the number of partial frames published) whenever it changes, a `: keep-alive` comment every
  15 s, and a final `end` event when the job is finished.
- GET /api/propagation-jobs/{id}/frames/?since=K -> {job, status, finished, cursor, height, width, frames:
  {"<frame>": {rle, object_score, iou}}}: frames published after cursor K (start with 0, pass back the
  returned cursor). rle is maskcodec.encode_slice_rle (row-major, starting with a run of zeros).
- POST /api/propagation-jobs/{id}/cancel/ -> 200 job (409 when already finished).
- GET /api/workers/ -> {queues: {default, gpu, training}, workers: [{name, queues, device, pid?, started_at?,
  last_beat_s?, restarts?, running_jobs?}]}: the live workers (an empty list: no worker is running).
"""

import json
import time

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, NotFound, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_app.annotations.api.views import ensure_assigned
from annotation_app.annotations.models import Target, TargetStatus
from annotation_app.imaging.models import CaseStatus
from annotation_app.lib.errors import Conflict
from annotation_app.lib.roles import Role
from annotation_app.lib.viewsets import ProjectScopedViewSet
from annotation_app.propagation import realtime, services
from annotation_app.propagation.api.serializers import PropagateRequestSerializer, PropagationJobSerializer
from annotation_app.propagation.models import PropagationJob

SSE_POLL_S = 0.5
SSE_KEEPALIVE_S = 15.0
SSE_MAX_S = 3600.0
EDITABLE = (TargetStatus.DRAFT, TargetStatus.PROPOSED, TargetStatus.CORRECTING)


class EventStreamRenderer(BaseRenderer):
    """Lets a client send `Accept: text/event-stream`; errors are still written as JSON text."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


class TargetPropagateViewSet(ProjectScopedViewSet):
    """Only the `propagate` action on targets (routed explicitly in urls.py)."""

    queryset = Target.objects.select_related("case")
    project_field = "case__project"
    required_roles = {"propagate": Role.ANNOTATOR}
    serializer_class = PropagationJobSerializer

    def propagate(self, request, pk=None):
        target = self.get_object()
        body = self.action_data(PropagateRequestSerializer)
        ensure_assigned(self, target)
        case = target.case
        if case.status != CaseStatus.READY:
            raise Conflict(f"case {case.pk} is {case.status}; only ready cases can be propagated")
        if target.round is not None:
            target.round.refuse_model_help()  # 409 in the manual-baseline round
        if target.status not in EDITABLE:
            raise Conflict(f"target is {target.status}; it cannot be propagated until a reviewer rejects it")
        frame_range = body.get("frame_range")
        if frame_range is not None and frame_range[1] >= case.n_frames:
            raise ValidationError({"frame_range": [f"frames must be in [0, {case.n_frames - 1}]."]})
        job = services.create_job(
            target, request.user, kind=body["kind"], direction=body["direction"], frame_range=frame_range
        )
        return Response(PropagationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobFilter(django_filters.FilterSet):
    class Meta:
        model = PropagationJob
        fields = ["target", "status", "kind"]


class PropagationJobViewSet(ProjectScopedViewSet):
    queryset = PropagationJob.objects.select_related("target__case")
    serializer_class = PropagationJobSerializer
    project_field = "target__case__project"
    filterset_class = JobFilter
    ordering_fields = ["id", "created_at", "status"]
    http_method_names = ["get", "post", "head", "options"]
    required_roles = {"cancel": Role.ANNOTATOR, "events": Role.ANNOTATOR, "frames": Role.ANNOTATOR}

    def create(self, request, *args, **kwargs):
        raise MethodNotAllowed("POST", detail="Start a job with POST /api/targets/{id}/propagate/.")

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        if job.is_finished:
            raise Conflict(f"job {job.pk} is already {job.status}")
        services.cancel_job(job)
        return Response(PropagationJobSerializer(job).data)

    @action(detail=True, methods=["get"])
    def frames(self, request, pk=None):
        job = self.get_object()
        raw = request.query_params.get("since", "0")
        try:
            since = int(raw)
            if since < 0:
                raise ValueError
        except ValueError:
            raise ValidationError({"since": ["must be a non-negative integer cursor."]}) from None
        frames, cursor = realtime.read_frames(job.pk, since)
        shape = job.target.case.shape or [0, 0, 0]
        return Response(
            {
                "job": job.pk,
                "status": job.status,
                "finished": job.is_finished,
                "cursor": cursor,
                "height": int(shape[1]) if len(shape) > 1 else 0,
                "width": int(shape[2]) if len(shape) > 2 else 0,
                "frames": frames,
            }
        )

    @action(detail=True, methods=["get"], renderer_classes=[EventStreamRenderer, JSONRenderer])
    def events(self, request, pk=None):
        from django.http import StreamingHttpResponse

        job = self.get_object()
        response = StreamingHttpResponse(_event_stream(job.pk), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: deliver events as they are written
        return response


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def _event_stream(job_id: int):
    """Yield `update` events while the job changes and an `end` event when it is finished."""
    last = None
    last_sent = time.monotonic()
    started = last_sent
    yield b"retry: 2000\n\n"
    while True:
        job = PropagationJob.objects.filter(pk=job_id).first()
        if job is None:
            yield _sse("end", {"id": job_id, "status": "deleted"})
            return
        data = dict(PropagationJobSerializer(job).data)
        try:
            data["cursor"] = realtime.read_frames_count(job_id)
        except Exception:  # partial results are optional for the progress stream
            data["cursor"] = None
        if data != last:
            yield _sse("update", data)
            last, last_sent = data, time.monotonic()
        if job.is_finished:
            yield _sse("end", data)
            return
        now = time.monotonic()
        if now - started > SSE_MAX_S:
            yield _sse("timeout", {"id": job_id, "detail": "stream closed; reconnect to continue"})
            return
        if now - last_sent > SSE_KEEPALIVE_S:
            yield b": keep-alive\n\n"
            last_sent = now
        time.sleep(SSE_POLL_S)


class _WorkerSerializer(serializers.Serializer):
    name = serializers.CharField()
    queues = serializers.ListField(child=serializers.CharField())
    device = serializers.CharField(allow_blank=True)
    pid = serializers.IntegerField(required=False)
    started_at = serializers.FloatField(required=False, help_text="Unix time the worker process started")
    last_beat_s = serializers.FloatField(required=False, help_text="seconds since its last presence refresh")
    restarts = serializers.IntegerField(required=False, help_text="restarts by the one-command run's supervisor")
    running_jobs = serializers.ListField(child=serializers.IntegerField(), required=False)


class WorkersInfoSerializer(serializers.Serializer):
    queues = serializers.DictField(child=serializers.IntegerField(), help_text="messages waiting per queue")
    workers = _WorkerSerializer(many=True)


class WorkersView(APIView):
    """Queue depths and live workers; any member of any project may look."""

    @extend_schema(responses=WorkersInfoSerializer, summary="Queue depths and live workers with their device")
    def get(self, request):
        user = request.user
        if not user.is_superuser:
            from annotation_app.projects.models import Membership

            if not Membership.objects.filter(user=user).exists():
                raise NotFound("You are not a member of any project.")
        return Response(services.workers_info())
