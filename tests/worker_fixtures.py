"""Fixtures that run a REAL Celery worker process (`celery -A annotation_app worker`) for tests.

The worker talks to Redis and to the pytest-django TEST database, so every test that uses these
fixtures is transactional (rows must be committed for another process to see them). Isolation from
other test runs sharing the same Redis: the session claims a free Redis database number (1..15) with a
lock key, empties it, and points both the test process's Celery app and the workers at it.

Fixtures:
- `celery_test_broker` (session): the claimed broker URL, e.g. redis://127.0.0.1:6379/7.
- `start_celery_worker` (function): factory `start(queues=("default",), concurrency=1, pool="prefork",
  env=None, name=None, ready_timeout=90)` -> `WorkerHandle`; every started worker is terminated at teardown.
- `celery_worker` (function): one worker on the default and gpu queues.

A `WorkerHandle` has `.pid`, `.name` (Celery node name), `.queues`, `.kill9()` (SIGKILL to the whole
process group: main process and pool children, as when a machine dies), `.stop()` (graceful, then
SIGKILL), `.is_alive()` and `.log()` (the worker's output so far, for failure messages).

Needs Postgres (DATABASE_URL) and Redis (TEST_REDIS_URL, default redis://127.0.0.1:6379); without them
the fixtures fail with a one-line reason rather than skipping.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from annotation_app.lib import tasks as contract

LOCK_KEY = "pytest:celery-worker-fixture:lock"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _redis_base_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")


def _claim_redis_db(base_url: str):
    import redis

    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    for db in range(1, 16):
        client = redis.Redis.from_url(f"{base_url}/{db}")
        try:
            got = client.set(LOCK_KEY, owner, nx=True, ex=6 * 3600)
        except redis.exceptions.ConnectionError as exc:
            pytest.fail(f"worker fixtures need Redis at {base_url}: {exc}", pytrace=False)
        if got:
            # Leftover queues from a crashed earlier run would be consumed by our workers: drop them.
            client.flushdb()
            client.set(LOCK_KEY, owner, ex=6 * 3600)
            return db, client, owner
    pytest.fail("no free Redis database (1..15) for the worker fixtures; all are locked", pytrace=False)


def _close_pool_without_waiting(pool, wait_s: float = 5.0) -> None:
    """Close a kombu connection pool, but give up after `wait_s`: a channel left inside a blocking BRPOP
    (a consumer whose poll never returned) makes kombu's close wait for that BRPOP's answer forever,
    which held whole test sessions at teardown. The daemon thread never keeps the process alive."""
    import threading

    closer = threading.Thread(target=pool.force_close_all, name="close-celery-pool", daemon=True)
    closer.start()
    closer.join(wait_s)


def _point_app_at(app, broker_url: str, result_url: str) -> None:
    """Re-point the test process's Celery app (connections are created lazily, but may be cached)."""
    # Celery reads CELERY_BROKER_URL / CELERY_RESULT_BACKEND from the environment before its config,
    # and settings from Django's CELERY_ namespace win over the plain names: set all of them.
    for name, value in (("CELERY_BROKER_URL", broker_url), ("CELERY_RESULT_BACKEND", result_url)):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    options = {"visibility_timeout": 3600}
    app.conf.update(
        {
            "broker_url": broker_url,
            "CELERY_BROKER_URL": broker_url,
            "result_backend": result_url,
            "CELERY_RESULT_BACKEND": result_url,
            "broker_transport_options": options,
            "CELERY_BROKER_TRANSPORT_OPTIONS": options,
        }
    )
    if app._pool is not None:
        _close_pool_without_waiting(app._pool)
        app._pool = None
    try:
        app.__dict__["amqp"]._producer_pool = None
    except (AttributeError, KeyError):
        pass
    # The result backend is cached per app (thread-safe backends) or per thread.
    app._backend_cache = None
    if hasattr(app._local, "backend"):
        del app._local.backend


@pytest.fixture(scope="session")
def celery_test_broker():
    from annotation_app.celery import app

    base = _redis_base_url()
    db, client, owner = _claim_redis_db(base)
    url = f"{base}/{db}"
    saved = (
        os.environ.get("CELERY_BROKER_URL") or app.conf.first("broker_url"),
        os.environ.get("CELERY_RESULT_BACKEND") or app.conf.first("result_backend", "CELERY_RESULT_BACKEND"),
        app.conf.broker_transport_options,
    )
    saved_env = {name: os.environ.get(name) for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    _point_app_at(app, url, url)
    try:
        yield url
    finally:
        _point_app_at(app, *saved[:2])
        app.conf.update({"broker_transport_options": saved[2], "CELERY_BROKER_TRANSPORT_OPTIONS": saved[2]})
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if client.get(LOCK_KEY) == owner.encode():
            client.flushdb()


def _test_database_url() -> str:
    from django.db import connection

    cfg = connection.settings_dict
    if "postgresql" not in cfg["ENGINE"]:
        pytest.fail(
            "worker fixtures need Postgres: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test "
            f"(the test database is {cfg['ENGINE']}, which another process cannot share)",
            pytrace=False,
        )
    user = cfg.get("USER") or "postgres"
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    host = cfg.get("HOST") or "127.0.0.1"
    port = cfg.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{cfg['NAME']}"


class WorkerHandle:
    def __init__(self, proc: subprocess.Popen, name: str, queues: tuple[str, ...], log_path: Path):
        self.proc = proc
        self.name = name
        self.queues = queues
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def kill9(self) -> None:
        """SIGKILL the main process and its pool children at once (no warm shutdown, no acks)."""
        if self.is_alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM); SIGKILL the group if it does not exit in `timeout` seconds."""
        if self.is_alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.is_alive():
            self.kill9()
        else:
            # Pool children may outlive a dead parent; make sure none is left.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _wait_ready(app, handle: WorkerHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not handle.is_alive():
            raise RuntimeError(f"celery worker {handle.name} exited during start:\n{handle.log()}")
        replies = app.control.ping(destination=[handle.name], timeout=0.5)
        if any(handle.name in reply for reply in replies):
            break
    else:
        raise RuntimeError(f"celery worker {handle.name} not ready after {timeout:.0f}s:\n{handle.log()}")
    if "default" in handle.queues:
        # Round trip through the default queue: the worker consumes and runs tasks, not just pings.
        result = app.send_task(contract.PING.name, args=["ready"], queue=contract.PING.queue)
        result.get(timeout=max(5.0, deadline - time.monotonic()))


@pytest.fixture
def start_celery_worker(transactional_db, celery_test_broker, settings, tmp_path):
    from annotation_app.celery import app

    database_url = _test_database_url()
    started: list[WorkerHandle] = []

    def start(
        queues=("default",),
        concurrency: int = 1,
        pool: str = "prefork",
        env: dict | None = None,
        name: str | None = None,
        ready_timeout: float = 90.0,
    ) -> WorkerHandle:
        queues = tuple(queues)
        node = f"{name or 'pytest'}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        log_path = tmp_path / f"worker-{node.split('@')[0]}.log"
        child_env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": celery_test_broker,
            "CELERY_RESULT_BACKEND": celery_test_broker,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "ANNOTATION_VAR_DIR": str(settings.VAR_DIR),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        cmd = [
            sys.executable, "-m", "celery", "-A", "annotation_app", "worker",
            "-n", node, "-Q", ",".join(queues), "-c", str(concurrency), "--pool", pool,
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so kill9() reaches the pool children
            )  # fmt: skip
        handle = WorkerHandle(proc, node, queues, log_path)
        started.append(handle)
        _wait_ready(app, handle, ready_timeout)
        return handle

    try:
        yield start
    finally:
        for handle in started:
            handle.stop()


@pytest.fixture
def celery_worker(start_celery_worker):
    return start_celery_worker(queues=("default", "gpu"))
