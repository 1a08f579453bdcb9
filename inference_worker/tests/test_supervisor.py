"""The one-command run's supervisor restarts a worker that dies, says so, and stops it on SIGTERM.

A stand-in worker (a Python process that prints its restart count and sleeps) keeps this fast; the
real Celery worker under the supervisor is killed in tests/test_embedded_soak.py."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
FAKE = (
    "import os, time; print('restarts', os.environ['MEDSAM2_WORKER_RESTARTS'], os.getpid(), flush=True); "
    "time.sleep(60)"
)
RUN = (
    "from inference_worker.supervisor import Supervisor; "
    f"Supervisor([{sys.executable!r}, '-c', {FAKE!r}], 'fake@host').run()"
)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def _wait(cond, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_killed_worker_is_restarted_with_a_message_and_sigterm_stops_both(tmp_path):
    out, err = open(tmp_path / "out", "w+"), open(tmp_path / "err", "w+")
    sup = subprocess.Popen([sys.executable, "-c", RUN], cwd=REPO, stdout=out, stderr=err)
    try:
        first = _wait(lambda: _children(sup.pid))[0]
        os.kill(first, signal.SIGKILL)
        second = _wait(lambda: [p for p in _children(sup.pid) if p != first])[0]
        _wait(lambda: "restarts 1" in (tmp_path / "out").read_text())
        log = (tmp_path / "err").read_text()
        assert f"worker fake@host (pid {first}) was killed by SIGKILL" in log
        assert "restarting it in 1 s (restart 1)" in log
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0
        assert "worker fake@host stopped" in (tmp_path / "err").read_text()
        _wait(lambda: not os.path.exists(f"/proc/{second}") or open(f"/proc/{second}/stat").read().split()[2] == "Z")
    finally:
        if sup.poll() is None:
            sup.kill()
        for pid in _children(sup.pid):
            os.kill(pid, signal.SIGKILL)
