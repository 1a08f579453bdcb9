"""A real worker process answering over Redis (routing by the task contract: tests/test_task_contract.py).

The health task touches no database, so this worker runs against whatever database the test run uses
(SQLite or Postgres); the Redis database number comes from the shared `celery_test_broker` fixture
(tests/worker_fixtures.py), which keeps parallel test runs apart.
"""

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from annotation_app.celery import app
from annotation_app.lib import tasks as contract

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_worker(celery_test_broker, tmp_path):
    node = f"roundtrip-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": celery_test_broker,
        "CELERY_RESULT_BACKEND": celery_test_broker,
        "ANNOTATION_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)  # the ping task needs no database
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "annotation_app",
                "worker",
                "-Q",
                "default",
                "-c",
                "1",
                "--pool",
                "solo",
                "-n",
                node,
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.mark.slow
def test_a_real_worker_process_answers_the_health_task_over_redis(redis_worker):
    proc, log = redis_worker
    result = app.send_task(contract.PING.name, args=["hello"], queue=contract.PING.queue)
    try:
        reply = result.get(timeout=300)  # a loaded CI machine may take minutes to start a worker
    except Exception as exc:
        pytest.fail(f"no reply from the worker ({exc!r}); its log:\n{log.read_text()[-3000:]}", pytrace=False)
    assert reply["echo"] == "hello"
    # --pool solo runs the task in the worker's main process: the reply really came from that process.
    assert reply["pid"] == proc.pid
    assert result.state == "SUCCESS"
