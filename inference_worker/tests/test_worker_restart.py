"""A worker started again under the same node name takes back its dead predecessor's running jobs at
once; presence without Redis (VAR_DIR/workers) drops a killed worker at once; the workers endpoint
shows each worker's state."""

import os
import socket
import subprocess
import sys
import time

import pytest
from django.utils import timezone

from annotation_app.propagation import realtime, services
from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case, make_target
from inference_worker import recovery

NODE = f"demo@{socket.gethostname()}"


@pytest.fixture
def sent(monkeypatch, transactional_db):
    from annotation_app.celery import app

    calls = []
    monkeypatch.setattr(
        app, "send_task", lambda name, args=None, queue=None, task_id=None, **kw: calls.append((list(args), queue))
    )
    return calls


@pytest.fixture
def target(project, annotator, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return make_target(make_case(project), annotator)


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def running(target, key: str, worker: str, attempts: int = 1) -> PropagationJob:
    now = timezone.now()  # a fresh heartbeat: the stale-heartbeat recovery would wait another minute
    return PropagationJob.objects.create(
        target=target, idempotency_key=key, status=JobStatus.RUNNING, worker=worker, heartbeat_at=now,
        started_at=now, attempts=attempts, celery_task_id="old", queue="gpu",
    )  # fmt: skip


def test_a_restarted_worker_requeues_the_jobs_of_its_dead_predecessor_at_once(target, sent, dead_pid):
    orphan = running(target, "orphan", f"{NODE}#{dead_pid}")
    alive = running(target, "alive", f"{NODE}#{os.getppid()}")  # a live process of the same node
    other = running(target, "other", f"other@{socket.gethostname()}#{dead_pid}")  # another node: not ours
    assert recovery.requeue_orphans(NODE) == [orphan.pk]
    for job in (orphan, alive, other):
        job.refresh_from_db()
    assert (orphan.status, orphan.worker, orphan.queue) == (JobStatus.QUEUED, "", "gpu")
    assert sent == [([orphan.pk], "gpu")]
    assert alive.status == other.status == JobStatus.RUNNING
    assert recovery.requeue_orphans(NODE) == []  # exactly once


def test_a_node_of_another_machine_is_never_judged_by_local_pids(target, sent, dead_pid):
    running(target, "remote", f"gpu@elsewhere-host#{dead_pid}")
    assert recovery.requeue_orphans("gpu@elsewhere-host") == []
    assert sent == []


def test_an_orphan_that_already_lost_its_worker_too_often_fails(target, sent, dead_pid):
    job = running(target, "doomed", f"{NODE}#{dead_pid}", attempts=3)
    assert recovery.requeue_orphans(NODE) == []
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "lost 3 times" in job.error
    assert sent == []


def test_presence_in_files_lists_a_live_worker_and_drops_a_dead_one_at_once(settings, tmp_path, dead_pid, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(realtime, "redis_client", lambda: None)  # the embedded broker: no Redis
    realtime.beat_worker(NODE, ["default", "gpu"], "cpu", os.getpid(), started_at=time.time() - 90, restarts=2)
    realtime.beat_worker("gone@" + socket.gethostname(), ["gpu"], "cpu", dead_pid)
    names = [w["name"] for w in realtime.live_workers()]
    assert names == [NODE]
    assert realtime.worker_alive(NODE) and not realtime.worker_alive("gone@" + socket.gethostname())
    realtime.forget_worker(NODE)
    assert realtime.live_workers() == []


def test_the_workers_endpoint_shows_state_and_running_jobs(target, settings, tmp_path, monkeypatch, transactional_db):
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(realtime, "redis_client", lambda: None)
    realtime.beat_worker(NODE, ["default", "gpu", "training"], "cpu", os.getpid(), started_at=time.time(), restarts=1)
    job = running(target, "busy", f"{NODE}#{os.getpid()}")
    info = services.workers_info()
    [worker] = info["workers"]
    assert (worker["name"], worker["restarts"], worker["running_jobs"], worker["pid"]) == (
        NODE,
        1,
        [job.pk],
        os.getpid(),
    )
    assert 0 <= worker["last_beat_s"] < 5
    assert set(info["queues"]) == {"default", "gpu", "training"}


def test_the_admin_job_list_says_which_workers_run(target, settings, tmp_path, monkeypatch, client, django_user_model):
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(realtime, "redis_client", lambda: None)
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-pw-123")
    client.force_login(admin)
    page = client.get("/admin/propagation/propagationjob/").content.decode()
    assert "No worker is running" in page
    realtime.beat_worker(NODE, ["default", "gpu"], "cpu", os.getpid(), started_at=time.time(), restarts=0)
    page = client.get("/admin/propagation/propagationjob/").content.decode()
    assert "No worker is running" not in page
    assert f"Worker {NODE} · queues default, gpu · cpu · idle" in page
