"""With nothing configured, the product runs embedded: SQLite, kombu's filesystem broker, local media.

Each test starts from a clean environment (no DATABASE_URL, no CELERY_BROKER_URL) and a fresh
ANNOTATION_VAR_DIR, exactly as a laptop with only Python would.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "TMPDIR")
SEND_PING = """
import os
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
django.setup()
from annotation_app.celery import app
from annotation_app.lib import tasks
result = app.send_task(tasks.PING.name, args=["over files"])
print(result.get(timeout=120)["echo"])
"""


@pytest.fixture
def embedded(tmp_path):
    """A clean environment with a migrated SQLite database in a temporary var dir."""
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(ANNOTATION_VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert (tmp_path / "var" / "db.sqlite3").is_file()
    return env, tmp_path / "var"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.mark.slow
def test_a_fresh_checkout_migrates_and_serves_the_api(embedded):
    env, _ = embedded
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _, body = _get(f"http://127.0.0.1:{port}/api/")
                break
            except (ConnectionError, urllib.error.URLError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"runserver did not come up:\n{server.stdout.read().decode()}", pytrace=False)
                time.sleep(0.3)
        assert status == 200
        assert "project" in json.loads(body)["endpoints"]
        page_status, page_headers, page = _get(f"http://127.0.0.1:{port}/")
        assert page_status == 200 and b"<" in page  # the browser app (or how to build it)
        assert "csrftoken" in page_headers.get("Set-Cookie", "")
        me_status, headers, _ = _get(f"http://127.0.0.1:{port}/api/auth/me/")
        assert me_status in (401, 403)
        assert "csrftoken" in headers.get("Set-Cookie", "")
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_task_goes_round_trip_through_the_filesystem_broker(embedded):
    env, var = embedded
    worker = subprocess.Popen(
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
            "--without-gossip",
            "--without-mingle",
            "-n",
            "embedded@%h",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        client = subprocess.run(
            [sys.executable, "-c", SEND_PING],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == "over files"
        assert (var / "broker" / "queue").is_dir()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


WEB_IMPORTS = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
from annotation_app.wsgi import application
from django.urls import get_resolver
get_resolver().url_patterns  # imports every app's views and serializers
heavy = sorted(name for name in ("torch", "torchvision", "sam2") if name in sys.modules)
print(",".join(heavy) or "none")
"""


def test_the_web_process_never_imports_torch(tmp_path):
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env["ANNOTATION_VAR_DIR"] = str(tmp_path / "var")
    result = subprocess.run(
        [sys.executable, "-c", WEB_IMPORTS], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"
