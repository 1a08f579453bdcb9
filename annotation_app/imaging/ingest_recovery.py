"""An ingest whose worker died (kill -9, lost machine) is converted again, once, by another worker.

The run that converts a case claims it first (`claim`: a conditional update, so one run at a time):
it records who it is (`<celery node>#<pid>`), counts the attempt and then beats
(`Case.ingest_heartbeat_at`) every INGEST_HEARTBEAT_S seconds (default 10) from a thread until it is
done. A claim whose heartbeat is older than INGEST_STALE_AFTER_S (default 60) belongs to a dead worker.
(Those and INGEST_MAX_ATTEMPTS are settings, read from the environment in settings.py.)

`recover_ingests()` runs in every Celery worker's recovery loop (inference_worker/recovery.py, every
PROPAGATION_RECOVERY_INTERVAL_S seconds and once when the worker is ready): a case with a stale claim,
or one claimed by an earlier process of this worker's node name that is gone from this machine, is
released and its ingest task sent again; after INGEST_MAX_ATTEMPTS (default 3) lost workers it is
failed with a reason instead of looping, and its files are removed. A late redelivery of the dead
worker's message (Redis, after its visibility timeout) finds the case claimed or ready and is skipped.
The canonical array's key is the case's own (storage.case_array_key), so a second conversion replaces
the first one's part instead of adding a file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.imaging.storage import case_array_key

log = logging.getLogger(__name__)


def heartbeat_s() -> float:
    return float(settings.INGEST_HEARTBEAT_S)


def stale_after_s() -> float:
    return float(settings.INGEST_STALE_AFTER_S)


def max_attempts() -> int:
    return int(settings.INGEST_MAX_ATTEMPTS)


def _worker_node() -> str:
    """The Celery node name when this runs in a worker's task, else ""."""
    from celery import current_task

    if not current_task or current_task.request.is_eager:  # a proxy: falsy outside a task
        return ""
    return current_task.request.hostname or ""


def worker_identity() -> str:
    """`<celery node name>#<pid>` inside a worker, `<host>#<pid>` elsewhere (web, management command)."""
    return f"{_worker_node() or socket.gethostname()}#{os.getpid()}"


def _lost_reason(attempts: int) -> str:
    return (
        f"the worker converting this image was lost {attempts} times (stopped or out of memory); "
        "giving up. Upload it again, or ask an administrator to check the workers."
    )


def claim(case: Case, worker: str) -> bool:
    """Take `case` for conversion: True when this run may convert it. An unclaimed case, or one whose
    claim went stale, is taken (one caller wins); a stale one that has used up its attempts is failed."""
    cutoff = timezone.now() - timedelta(seconds=stale_after_s())
    free = Q(ingest_heartbeat_at__isnull=True) | Q(ingest_heartbeat_at__lt=cutoff)
    mine = Case.objects.filter(pk=case.pk, status=CaseStatus.INGESTING).filter(free)
    if case.ingest_heartbeat_at is not None and case.ingest_attempts >= max_attempts():
        _give_up(case, mine)
        return False
    won = mine.update(
        ingest_worker=worker, ingest_heartbeat_at=timezone.now(), ingest_attempts=F("ingest_attempts") + 1
    )
    case.refresh_from_db()
    return won == 1


class _Beat(threading.Thread):
    def __init__(self, case_id: int, worker: str, interval: float):
        super().__init__(name=f"ingest-heartbeat-{case_id}", daemon=True)
        self.case_id, self.worker, self.interval = case_id, worker, interval
        self.stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop_event.wait(self.interval):
                try:
                    Case.objects.filter(pk=self.case_id, status=CaseStatus.INGESTING, ingest_worker=self.worker).update(
                        ingest_heartbeat_at=timezone.now()
                    )
                except Exception as exc:  # the database is away for a moment: beat again next time
                    log.warning("ingest heartbeat of case %s: %s", self.case_id, exc)
        finally:
            connection.close()  # this thread's own connection


@contextlib.contextmanager
def heartbeat(case_id: int, worker: str):
    """Beat for `case_id` while the block runs (in a Celery worker; a test's in-process run does not
    need one, and its thread would wait on the test's open transaction)."""
    beat = _Beat(case_id, worker, heartbeat_s()) if _worker_node() else None
    if beat is not None:
        beat.start()
    try:
        yield
    finally:
        if beat is not None:
            beat.stop_event.set()


def discard_files(case: Case) -> None:
    """Remove what a conversion of `case` may have stored: its canonical array (whole or part) and the
    original upload, unless another case that is not failed still needs it."""
    for key in {case.image_key, case_array_key(case)} - {""}:
        if default_storage.exists(key):
            default_storage.delete(key)
    original = case.original_key
    if original:
        others = Case.objects.filter(original_key=original).exclude(pk=case.pk).exclude(status=CaseStatus.FAILED)
        if not others.exists() and default_storage.exists(original):
            default_storage.delete(original)


def remove_leftover_work(root: Path, case_id: int) -> None:
    """Remove the work folders that lost runs of `case_id` left in this machine's staging folder (the
    caller holds the claim, so no live run of the case uses one)."""
    for folder in root.glob(f"ingest-{case_id}-*"):
        shutil.rmtree(folder, ignore_errors=True)


def _give_up(case: Case, still_lost) -> bool:
    reason = _lost_reason(case.ingest_attempts)
    if not still_lost.update(status=CaseStatus.FAILED, error=reason):
        return False
    log.error("ingest of case %s: %s (last: %s)", case.pk, reason, case.ingest_worker)
    case.refresh_from_db()
    discard_files(case)
    from annotation_app.imaging.ingest import staging_root

    remove_leftover_work(staging_root(), case.pk)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphans(node: str) -> list[Case]:
    """Cases claimed by an earlier process of worker `node` (same name, this machine) that is gone."""
    if not node or node.partition("@")[2] not in ("", socket.gethostname()):
        return []
    out = []
    claimed = Case.objects.filter(status=CaseStatus.INGESTING, ingest_worker__startswith=f"{node}#")
    for case in claimed.exclude(ingest_heartbeat_at__isnull=True):
        try:
            pid = int(case.ingest_worker.rpartition("#")[2])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            out.append(case)
    return out


def recover_ingests(node: str | None = None) -> list[int]:
    """Send again the ingests of lost workers (stale claims, and with `node` that node's dead processes);
    returns the ids of the cases requeued or given up."""
    from annotation_app.imaging.ingest import enqueue_ingest

    cutoff = timezone.now() - timedelta(seconds=stale_after_s())
    lost = {c.pk: c for c in Case.objects.filter(status=CaseStatus.INGESTING, ingest_heartbeat_at__lt=cutoff)}
    lost.update({c.pk: c for c in _orphans(node or "")})
    handled = []
    for case in lost.values():
        still_lost = Case.objects.filter(
            pk=case.pk,
            status=CaseStatus.INGESTING,
            ingest_worker=case.ingest_worker,
            ingest_heartbeat_at=case.ingest_heartbeat_at,
        )
        if case.ingest_attempts >= max_attempts():
            if _give_up(case, still_lost):
                handled.append(case.pk)
            continue
        if still_lost.update(ingest_worker="", ingest_heartbeat_at=None):
            log.warning("ingest of case %s: worker %s lost; queued again", case.pk, case.ingest_worker)
            enqueue_ingest(case.pk)
            handled.append(case.pk)
    return handled
