"""Faults under real services: the broker restarted and the database gone during a propagation.

Redis here is a private `redis-server` on a free port (no persistence, as the product's compose file
runs it), so restarting it touches nobody else's queues. The database outage is the test database
only: new connections are refused (ALLOW_CONNECTIONS false) and every other session is terminated,
which is what clients see of a Postgres restart, then connections are allowed again.

Each test ends with no lost revision: the job the annotator asked for finishes exactly once, and the
worker keeps serving the next job.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from django.db import connection

from annotation_app.annotations.models import MaskRevision
from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case, make_target, tiny_model_version
from tests.test_propagation_worker import WORKER_ENV, finished, propagate, wait_for
from tests.worker_fixtures import _point_app_at

pytestmark = pytest.mark.slow

SLOW_FRAMES = {**WORKER_ENV, "MEDSAM2_TEST_FRAME_DELAY_S": "0.4"}


class PrivateRedis:
    """A throwaway redis-server that can be killed and started again on the same port."""

    def __init__(self, workdir):
        if shutil.which("redis-server") is None:
            pytest.fail("the fault tests need redis-server on PATH (Debian package redis-server)", pytrace=False)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
               "--dir", str(self.workdir)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), timeout=15, what=f"redis-server on port {self.port}")

    def restart(self, down_s: float) -> None:
        """Kill it, stay down `down_s` seconds, start it empty; the test process's pooled connections
        (its control-broadcast connection has no reconnect) are dropped so later pings reconnect."""
        from annotation_app.celery import app

        self.kill()
        time.sleep(down_s)
        self.start()
        from kombu import pools

        _point_app_at(app, self.url, self.url)
        pools.reset()  # kombu's global producer pools still hold the closed connection pool

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def celery_test_broker(celery_test_broker, private_redis):
    """Workers and the test process of this module talk to the private Redis, not the shared one."""
    from annotation_app.celery import app

    _point_app_at(app, private_redis.url, private_redis.url)
    try:
        yield private_redis.url
    finally:
        _point_app_at(app, celery_test_broker, celery_test_broker)


@pytest.fixture
def scene(project, annotator, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    version = tiny_model_version(project, tmp_path)
    case = make_case(project)
    first, second = make_target(case, annotator), make_target(case, annotator)
    return {"version": version, "case": case, "first": first, "second": second}


def _database_outage(seconds: float) -> int:
    """Refuse new connections to the test database for `seconds` and drop every session but the test's
    own (from an admin session on the `postgres` database: a database cannot lock itself out)."""
    import psycopg2

    cfg = connection.settings_dict
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        ours = cur.fetchone()[0]
    admin = psycopg2.connect(host=cfg.get("HOST") or "127.0.0.1", port=cfg.get("PORT") or 5432,
                             user=cfg.get("USER") or "postgres", password=cfg.get("PASSWORD") or None,
                             dbname="postgres")  # fmt: skip
    admin.autocommit = True
    try:
        cur = admin.cursor()
        cur.execute(f'ALTER DATABASE "{cfg["NAME"]}" ALLOW_CONNECTIONS false')
        try:
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                [cfg["NAME"], ours],
            )
            dropped = cur.fetchone()[0]
            time.sleep(seconds)
        finally:
            cur.execute(f'ALTER DATABASE "{cfg["NAME"]}" ALLOW_CONNECTIONS true')
    finally:
        admin.close()
    return dropped


def test_a_broker_restart_during_a_propagation_loses_no_job(
    start_celery_worker, private_redis, scene, annotator, client_for
):
    worker = start_celery_worker(queues=("gpu",), env=SLOW_FRAMES, name="through-redis-restart")
    job = propagate(client_for, annotator, scene["first"])
    wait_for(lambda: PropagationJob.objects.get(pk=job.pk).frames_done >= 3, what="three frames")

    private_redis.restart(down_s=2.0)  # back empty: no persistence, as in production's compose file

    finished(job, timeout=120, worker=worker)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert MaskRevision.objects.filter(target=scene["first"]).count() == 1
    # the worker reconnected and serves the next job
    after = finished(propagate(client_for, annotator, scene["second"]), timeout=120, worker=worker)
    assert after.status == JobStatus.SUCCEEDED, after.error
    assert worker.is_alive()
    assert MaskRevision.objects.filter(target=scene["second"]).count() == 1


def test_a_database_outage_during_a_propagation_loses_no_job(start_celery_worker, scene, annotator, client_for):
    worker = start_celery_worker(queues=("gpu",), env=SLOW_FRAMES, name="through-db-outage")
    job = propagate(client_for, annotator, scene["first"])
    wait_for(lambda: PropagationJob.objects.get(pk=job.pk).frames_done >= 3, what="three frames")

    dropped = _database_outage(3.0)
    assert dropped >= 1  # the worker's session was among them

    finished(job, timeout=120, worker=worker)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts >= 2, worker.log()  # the outage did reach the job: it was given back and run again
    assert MaskRevision.objects.filter(target=scene["first"]).count() == 1
    after = finished(propagate(client_for, annotator, scene["second"]), timeout=120, worker=worker)
    assert after.status == JobStatus.SUCCEEDED, after.error
    assert worker.is_alive()
    assert MaskRevision.objects.filter(target=scene["second"]).count() == 1
