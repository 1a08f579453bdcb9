"""Creating, sending and cancelling propagation jobs from the web process (tasks are sent by NAME).

The web process never imports torch or medsam2: the worker task is the task contract's PROPAGATE
(lib/tasks.py), sent only after the job row is committed, so a fast worker never looks for a row that
does not exist yet.
"""

import hashlib
import json
import logging
import uuid

from django.db import transaction

from annotation_app.annotations.models import Prompt, Target
from annotation_app.lib import tasks
from annotation_app.lib.errors import Conflict
from annotation_app.propagation import realtime
from annotation_app.propagation.models import JobKind, JobStatus, PropagationJob

log = logging.getLogger(__name__)

SHARED_GPU_QUEUE = tasks.PROPAGATE.queue
ACTIVE = [JobStatus.QUEUED, JobStatus.RUNNING]
#: Redis message priorities (0 is served first): a key-frame job (one frame, someone waiting for it)
#: overtakes queued full propagations; it does not interrupt one that is running.
PRIORITY = {JobKind.KEY_FRAME: 0, JobKind.PROPAGATE: 6}


def job_key_base(target: Target, kind: str, direction: str, frame_range, prompt_ids: list[int]) -> str:
    """What makes two requests "the same": target, kind, direction, range and the live prompts."""
    spec = json.dumps(
        {"kind": kind, "direction": direction, "range": frame_range, "prompts": sorted(prompt_ids)},
        sort_keys=True,
    )
    return f"t{target.pk}-{hashlib.sha256(spec.encode()).hexdigest()[:24]}"


def choose_queue(case_id: int) -> str:
    """The own queue of the worker that holds this case's features if it is alive, else `gpu`."""
    try:
        node = realtime.case_affinity(case_id)
        if node and realtime.worker_alive(node):
            return realtime.worker_queue(node)
    except Exception as exc:  # Redis trouble must not stop a job from being queued
        log.warning("case affinity lookup failed: %s", exc)
    return SHARED_GPU_QUEUE


def create_job(
    target: Target, user, kind: str = str(JobKind.PROPAGATE), direction: str = "both", frame_range=None
) -> PropagationJob:
    """Queue a job for `target`; Conflict (409) if the same job is already queued or running.

    A new job supersedes older active jobs of the same kind for the target (their prompts are out of
    date), which are asked to cancel."""
    with transaction.atomic():
        # Serialise concurrent requests for one target so two identical POSTs cannot both pass.
        Target.objects.select_for_update().filter(pk=target.pk).first()
        prompt_ids = list(Prompt.objects.filter(target=target, withdrawn=False).values_list("pk", flat=True))
        if not prompt_ids:
            raise Conflict("the target has no prompts; place a box, points or a mask first")
        base = job_key_base(target, kind, direction, frame_range, prompt_ids)
        active = PropagationJob.objects.filter(target=target, kind=kind, status__in=ACTIVE)
        duplicate = active.filter(idempotency_key__startswith=f"{base}:").first()
        if duplicate is not None:
            raise Conflict(f"job {duplicate.pk} for the same prompts is already {duplicate.status}")
        for old in active:
            cancel_job(old)
        job = PropagationJob.objects.create(
            target=target,
            kind=kind,
            direction=direction,
            frame_range=frame_range,
            idempotency_key=f"{base}:{uuid.uuid4().hex[:12]}",
            celery_task_id=str(uuid.uuid4()),
            queue=choose_queue(target.case_id),
            requested_by=user if getattr(user, "is_authenticated", False) else None,
        )
        # job ids start again with a fresh database on the same Redis (e2e runs, a re-created dev
        # database): a new job's live frame list starts empty, never with an earlier job's frames
        try:
            realtime.clear_frames(job.pk)
        except Exception as exc:  # Redis trouble must not stop a job from being queued
            log.warning("could not clear stale live frames of job %s: %s", job.pk, exc)
        # After commit; a broker that cannot be reached fails the job rather than leaving it queued
        # with no message that would ever run it.
        send_job(job, on_error=job.fail)
    return job


def send_job(job: PropagationJob, queue: str | None = None, on_error=None) -> None:
    """Publish the task for `job` on its queue (after commit); the worker re-reads the row."""
    queue = queue or job.queue or SHARED_GPU_QUEUE
    if queue != job.queue:
        PropagationJob.objects.filter(pk=job.pk).update(queue=queue)
        job.queue = queue
    tasks.send(
        tasks.PROPAGATE,
        job.pk,
        queue=queue,
        task_id=job.celery_task_id or None,
        priority=PRIORITY.get(job.kind, 6),
        on_error=on_error,
    )


def cancel_job(job: PropagationJob) -> PropagationJob:
    """Flag the job (the worker checks every frame) and revoke its message (a queued one never runs)."""
    job.request_cancel()
    from annotation_app.celery import app

    # Without remote control (the embedded broker) there is no revoke; the flag alone is enough.
    if job.celery_task_id and app.conf.worker_enable_remote_control:
        try:
            app.control.revoke(job.celery_task_id)
        except Exception as exc:  # the flag alone is enough; revoke only saves work
            log.warning("revoke of job %s failed: %s", job.pk, exc)
    return job


def workers_info(timeout: float = 1.0) -> dict:
    """Queue depths and live workers: presence (Redis keys, or VAR_DIR/workers on the embedded broker)
    plus, where remote control is on, `celery inspect`. Each worker: name, queues, device, and when
    known pid, started_at, last_beat_s (seconds since its last presence refresh), restarts (by the
    one-command run's supervisor) and running_jobs (ids of the propagation jobs it is running)."""
    import time

    from annotation_app.celery import app

    queues = {"default": 0, "gpu": 0, "training": 0}
    workers: dict[str, dict] = {}
    now = time.time()
    try:
        queues = realtime.queue_lengths(list(queues))
        for beat in realtime.live_workers():
            entry = {"name": beat["name"], "queues": beat["queues"], "device": beat["device"]}
            for field in ("pid", "started_at", "restarts"):
                if beat.get(field) is not None:
                    entry[field] = beat[field]
            if beat.get("at"):
                entry["last_beat_s"] = round(max(0.0, now - float(beat["at"])), 1)
            workers[beat["name"]] = entry
    except Exception as exc:
        log.warning("reading queue depths failed: %s", exc)
    if app.conf.worker_enable_remote_control:
        try:
            active = app.control.inspect(timeout=timeout).active_queues() or {}
        except Exception as exc:
            log.warning("celery inspect failed: %s", exc)
            active = {}
        for name, consumed in active.items():
            entry = workers.setdefault(name, {"name": name, "device": ""})
            entry["queues"] = sorted(q["name"] for q in consumed)
    running = PropagationJob.objects.filter(status=JobStatus.RUNNING).values_list("pk", "worker")
    for pk, worker in running:
        entry = workers.get(worker.partition("#")[0])
        if entry is not None:
            entry.setdefault("running_jobs", []).append(pk)
    return {"queues": queues, "workers": sorted(workers.values(), key=lambda w: w["name"])}
