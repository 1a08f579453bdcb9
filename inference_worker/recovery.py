"""Crash recovery and worker presence, without a beat scheduler.

A job whose worker died (kill -9, lost machine) stays `running` with a heartbeat that stops moving.
With Redis, its unacknowledged message would only come back after the broker's visibility timeout
(an hour), so recovery does not wait for that: `requeue_stale_jobs()` puts every running job whose
heartbeat is older than PROPAGATION_STALE_AFTER_S (default 60 s) back to `queued` (a conditional
update: exactly one caller wins) and sends it again on the shared `gpu` queue; after
PROPAGATION_MAX_ATTEMPTS (default 3) lost workers the job fails instead of looping. A queued job sent to a
worker's own queue (`gpu.<node>`, for feature reuse) whose worker is gone is re-sent to `gpu` too.
A late redelivery of the old message is harmless: the claim refuses it, and the revision's job key is
unique.

A worker that starts again under the same node name (the supervisor of the one-command run restarts
a dead worker) first takes back the jobs its dead predecessor was running: a running job of this node
whose process is gone from this machine is queued again at once (`requeue_orphans`), without waiting
for its heartbeat to go stale.

When it runs (document for operators):
- in every Celery worker's main process: once when the worker is ready (orphans of the same node first),
  then every PROPAGATION_RECOVERY_INTERVAL_S seconds (default 30) in a daemon thread, which also
  refreshes the worker's presence (Redis key, or VAR_DIR/workers/<node>.json on the embedded broker:
  queues, device, pid, start time, restarts) every PROPAGATION_PRESENCE_INTERVAL_S seconds (default 5;
  it expires after three missed refreshes) for the web process's workers page;
- on demand: `python manage.py requeue_stale_jobs`.

Also here: every worker that consumes `gpu` additionally consumes its own queue `gpu.<node>`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from celery.signals import celeryd_after_setup, worker_process_init, worker_ready, worker_shutdown
from django.conf import settings
from django.db import connection
from django.utils import timezone

from annotation_app.imaging.ingest_recovery import recover_ingests
from annotation_app.propagation import realtime
from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.services import SHARED_GPU_QUEUE, send_job
from annotation_app.rounds.lifecycle import requeue_stale_runs
from inference_worker.model_cache import choose_device

log = logging.getLogger(__name__)


def _requeue_running(job: PropagationJob, still_lost, reason: str) -> bool:
    """Queue `job` again on the shared gpu queue if `still_lost` (a queryset on its row) still matches;
    fail it instead once it has lost PROPAGATION_MAX_ATTEMPTS workers. True when requeued."""
    max_attempts = settings.PROPAGATION_MAX_ATTEMPTS
    if job.attempts >= max_attempts:
        # A job that kills its worker every time (out of memory, hard time limit) must stop.
        lost = f"the worker was lost {job.attempts} times while running this job"
        error = f"{lost} (last: {job.worker}); giving up"
        if still_lost.update(status=JobStatus.FAILED, finished_at=timezone.now(), error=error):
            log.error("job %s: %s", job.pk, error)
        return False
    task_id = str(uuid.uuid4())
    won = still_lost.update(status=JobStatus.QUEUED, worker="", celery_task_id=task_id, queue=SHARED_GPU_QUEUE)
    if not won:
        return False
    previous = job.worker
    job.refresh_from_db()
    log.warning("job %s: worker %s %s; queued again", job.pk, previous or "?", reason)
    send_job(job, SHARED_GPU_QUEUE)
    return True


def requeue_orphans(node: str) -> list[int]:
    """Queue again the running jobs of an earlier process of worker `node` that is gone from this
    machine (the worker was killed and has been started again); returns their ids.

    Only jobs of this node name whose recorded process id is not alive here are touched, so a job of
    a live process (or of a same-named worker on another machine, whose node name differs by host)
    is left alone."""
    if node.partition("@")[2] not in ("", socket.gethostname()):
        return []
    requeued: list[int] = []
    for job in PropagationJob.objects.filter(status=JobStatus.RUNNING, worker__startswith=f"{node}#"):
        try:
            pid = int(job.worker.rpartition("#")[2])
        except ValueError:
            continue
        if pid == os.getpid() or realtime._pid_alive(pid):
            continue
        still_lost = PropagationJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker=job.worker)
        if _requeue_running(job, still_lost, f"(process {pid}) is gone"):
            requeued.append(job.pk)
    return requeued


def requeue_stale_jobs(stale_after_s: float | None = None) -> list[int]:
    """Queue again the jobs of dead workers; returns their ids."""
    stale_after = stale_after_s if stale_after_s is not None else settings.PROPAGATION_STALE_AFTER_S
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    requeued: list[int] = []
    for job in PropagationJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff):
        still_lost = PropagationJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
        if _requeue_running(job, still_lost, "stopped beating"):
            requeued.append(job.pk)
    # Jobs waiting on the own queue of a worker that is gone would wait forever.
    old = timezone.now() - timedelta(seconds=stale_after)
    waiting = PropagationJob.objects.filter(status=JobStatus.QUEUED, queue__startswith="gpu.", created_at__lt=old)
    for job in waiting:
        node = job.queue[len("gpu.") :]
        if not realtime.worker_alive(node):
            won = PropagationJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED, queue=job.queue).update(
                queue=SHARED_GPU_QUEUE
            )
            if won:
                job.refresh_from_db()
                send_job(job, SHARED_GPU_QUEUE)
                requeued.append(job.pk)
    return requeued


class _Presence(threading.Thread):
    """Refreshes the worker's presence every `beat_interval` s and runs recovery every `interval` s."""

    def __init__(self, node: str, queues: list[str], interval: float, beat_interval: float):
        super().__init__(name="propagation-presence", daemon=True)
        self.node, self.queues, self.interval, self.beat_interval = node, queues, interval, beat_interval
        self.stop_event = threading.Event()
        self.started_at = time.time()
        self.restarts = settings.MEDSAM2_WORKER_RESTARTS

    def run(self) -> None:
        device = choose_device()  # the model's own rule (it initialises no CUDA in this parent)
        first = True
        next_recovery = 0.0
        while first or not self.stop_event.wait(self.beat_interval):
            try:
                realtime.beat_worker(
                    self.node, self.queues, device, os.getpid(), started_at=self.started_at, restarts=self.restarts
                )
                if first:
                    requeue_orphans(self.node)
                if time.monotonic() >= next_recovery:
                    next_recovery = time.monotonic() + self.interval
                    requeue_stale_jobs()
                    try:  # ingests of lost workers (imaging/ingest_recovery.py), whatever the other steps do
                        recover_ingests(self.node)
                    except Exception as exc:
                        log.warning("ingest recovery: %s", exc)
                    requeue_stale_runs()  # training runs of lost workers (rounds/lifecycle.py)
            except Exception as exc:  # never let the loop die; try again next interval
                log.warning("recovery loop: %s", exc)
            finally:
                first = False
                connection.close()


_presence: _Presence | None = None


@celeryd_after_setup.connect
def _add_own_queue(sender, instance, **kwargs) -> None:
    """A gpu worker also consumes `gpu.<node>`, so jobs of cases whose features it holds come to it."""
    queues = instance.app.amqp.queues
    # consume_from is None when the worker was started without -Q (it consumes every queue).
    if queues.consume_from is None or SHARED_GPU_QUEUE in queues.consume_from:
        queues.select_add(realtime.worker_queue(sender))


@worker_process_init.connect
def _preload_model_code(sender=None, **kwargs) -> None:
    """A gpu pool process imports torch and medsam2 at start, not during its first job's latency."""
    from annotation_app.celery import app

    consumed = app.amqp.queues.consume_from
    if consumed is None or SHARED_GPU_QUEUE in consumed:
        try:
            import medsam2.build  # noqa: F401
            import medsam2.predictor  # noqa: F401
        except Exception as exc:  # the job reports a broken install with a clear error later
            log.warning("preloading medsam2 failed: %s", exc)


@worker_ready.connect
def _start_presence(sender, **kwargs) -> None:
    global _presence
    node = sender.hostname
    queues = sorted(q.name for q in sender.task_consumer.queues) if sender.task_consumer else []
    interval = settings.PROPAGATION_RECOVERY_INTERVAL_S
    beat_interval = min(interval, settings.PROPAGATION_PRESENCE_INTERVAL_S)
    # The presence must outlive the interval between two refreshes, and not much more than that.
    realtime.WORKER_TTL_S = int(max(5.0, beat_interval * 3))
    _presence = _Presence(node, queues, interval, beat_interval)
    _presence.start()


@worker_shutdown.connect
def _stop_presence(sender=None, **kwargs) -> None:
    if _presence is not None:
        _presence.stop_event.set()
        try:
            realtime.forget_worker(_presence.node)
        except Exception:  # shutting down: Redis may already be gone
            pass
