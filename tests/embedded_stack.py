"""The one-command run's processes, started as `scripts/run.sh` starts them, for tests and benchmarks.

`EmbeddedStack(var_dir)` runs in a clean environment (no DATABASE_URL; CELERY_BROKER_URL only when a
benchmark asks for Redis): `prepare()` migrates and loads the small demo, `start_web()` runs
`manage.py runserver --noreload` on a free port, `start_worker()` runs `python -m
inference_worker.supervisor` (the supervised worker of run.sh) and waits until the worker is listed by
GET /api/workers/, and `stop()` ends them. `ApiClient` is a small HTTP client (token auth, JSON) that
stands in for the browser. Used by tests/test_embedded_soak.py and benchmarks/bench_embedded_broker.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "TMPDIR")
DEMO_PASSWORD = "demo-pass-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiError(Exception):
    def __init__(self, status: int, body: str, method: str, path: str):
        super().__init__(f"{method} {path} -> {status}: {body[:300]}")
        self.status = status


class ApiClient:
    """JSON over HTTP with a token, as the browser app talks to the API (it uses a session cookie)."""

    def __init__(self, base: str, token: str | None = None, timeout: float = 30.0):
        self.base, self.token, self.timeout = base.rstrip("/"), token, timeout
        self.calls = 0

    def request(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        self.calls += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode(errors="replace"), method, path) from None
        return json.loads(raw) if raw else None

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, body=None):
        return self.request("POST", path, body if body is not None else {})

    def login(self, username: str, password: str) -> ApiClient:
        token = self.post("/api/auth/token/", {"username": username, "password": password})["token"]
        return ApiClient(self.base, token, self.timeout)


class EmbeddedStack:
    def __init__(self, var_dir: Path, env: dict | None = None, worker_name: str | None = None):
        self.var = Path(var_dir)
        self.env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
        self.env.update(
            ANNOTATION_VAR_DIR=str(self.var),
            PYTHONUNBUFFERED="1",
            DEMO_PASSWORD=DEMO_PASSWORD,
            # a small machine: the worker's torch and the web server share two cores
            OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
            **(env or {}),
        )
        self.worker_name = worker_name or f"stack-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.web: subprocess.Popen | None = None
        self.supervisor: subprocess.Popen | None = None
        self.base = ""
        self.var.mkdir(parents=True, exist_ok=True)

    # --- set up
    def manage(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def prepare(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("load_demo", "--small")

    # --- processes
    def start_web(self, timeout: float = 120) -> str:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        log = open(self.var / "web.log", "wb")
        self.web = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                ApiClient(self.base, timeout=5).get("/api/")
                return self.base
            except (OSError, ApiError):
                if self.web.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"runserver did not come up:\n{self.log('web')}") from None
                time.sleep(0.3)

    def start_worker(self, client: ApiClient | None = None, timeout: float = 180, loglevel: str = "INFO") -> dict:
        """The supervised worker of run.sh; returns when GET /api/workers/ lists it."""
        log = open(self.var / "worker.log", "ab")
        self.supervisor = subprocess.Popen(
            [sys.executable, "-m", "inference_worker.supervisor", "--name", self.worker_name,
             "--queues", "default,gpu,training", "--loglevel", loglevel],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self.wait_for_worker(client, timeout=timeout)

    def live_worker(self, client: ApiClient | None) -> dict | None:
        if client is None:
            return None
        workers = client.get("/api/workers/")["workers"]
        return next((w for w in workers if w["name"] == self.worker_name), None)

    def wait_for_worker(self, client: ApiClient | None, timeout: float = 180, not_pid: int | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.supervisor is not None and self.supervisor.poll() is not None:
                raise RuntimeError(f"the supervisor exited:\n{self.log('worker')}")
            if client is None:
                if list((self.var / "workers").glob("*.json")):
                    return {}
            else:
                worker = self.live_worker(client)
                if worker is not None and worker.get("pid") != not_pid:
                    return worker
            time.sleep(0.3)
        raise RuntimeError(f"worker {self.worker_name} not live after {timeout:.0f}s:\n{self.log('worker')}")

    def worker_pid(self) -> int | None:
        """The pid of the Celery worker's main process (the supervisor's child)."""
        if self.supervisor is None:
            return None
        try:
            out = subprocess.run(
                ["pgrep", "-P", str(self.supervisor.pid)], capture_output=True, text=True, timeout=10
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            return None
        return int(out[0]) if out else None

    def log(self, which: str, tail: int = 6000) -> str:
        try:
            return (self.var / f"{which}.log").read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        for proc in (self.supervisor, self.web):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.supervisor, self.web):
            if proc is None:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its group (pool children)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def __enter__(self) -> EmbeddedStack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def demo_ct(client: ApiClient) -> dict:
    """The small demo's CT case (12 x 64 x 64, assigned to demo-annotator)."""
    cases = client.get("/api/cases/?page_size=50")["results"]
    return next(c for c in cases if c["name"] == "Demo CT (DICOM)")
