"""Keeps one Celery worker running for the one-command run (`scripts/run.sh`): restarts it when it dies.

    python -m inference_worker.supervisor [--name demo@%h] [--queues default,gpu,training] [-- extra celery args]

Runs `celery -A annotation_app worker` with the embedded default's options; when the worker process
exits without having been asked to (a crash, an out-of-memory kill, `kill -9`), says so on stderr
and starts it again: after 1 s, doubling up to 30 s while it keeps dying within 60 s of its start.
The new worker takes back the jobs its predecessor was running (inference_worker.recovery,
`requeue_orphans`): none is lost, and the job's claim keeps any from being done twice. SIGINT/SIGTERM
are passed on to the worker (a warm shutdown) and end the supervisor; a second one kills the worker.

The restart count reaches the worker as MEDSAM2_WORKER_RESTARTS and is shown on the workers pages.
This module imports neither Django nor Celery, so a restart costs only the worker's own start.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

QUICK_DEATH_S = 60.0
MAX_BACKOFF_S = 30.0


def worker_command(name: str, queues: str, loglevel: str, extra: list[str]) -> list[str]:
    """The worker the one-command run starts (also what the embedded soak test starts)."""
    return [
        sys.executable, "-m", "celery", "-A", "annotation_app", "worker",
        "-Q", queues, "--concurrency", "1", "-n", name, "--loglevel", loglevel,
        # Gossip, mingle and event heartbeats are broadcasts; the embedded broker has none.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        *extra,
    ]  # fmt: skip


def say(message: str) -> None:
    print(f"[supervisor {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    def __init__(self, command: list[str], name: str):
        self.command, self.name = command, name
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self.stop_asked = 0.0
        self.restarts = 0

    def _on_signal(self, signum, _frame) -> None:
        child = self.child
        if self.stopping:
            # A second Ctrl+C (not the same one reaching us twice, via the terminal and run.sh's trap,
            # within a second): no more waiting for the running task.
            if child is not None and child.poll() is None and time.monotonic() - self.stop_asked > 1.0:
                child.kill()
            return
        self.stopping, self.stop_asked = True, time.monotonic()
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    def start_child(self) -> None:
        env = {**os.environ, "MEDSAM2_WORKER_RESTARTS": str(self.restarts)}
        self.child = subprocess.Popen(self.command, env=env)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        backoff = 1.0
        while True:
            started = time.monotonic()
            self.start_child()
            assert self.child is not None
            say(f"worker {self.name} started (pid {self.child.pid})")
            code = self.child.wait()
            if self.stopping:
                say(f"worker {self.name} stopped")
                return 0
            lived = time.monotonic() - started
            backoff = min(MAX_BACKOFF_S, backoff * 2) if lived < QUICK_DEATH_S and self.restarts else 1.0
            self.restarts += 1
            say(
                f"worker {self.name} (pid {self.child.pid}) {describe_exit(code)} after {lived:.0f} s; "
                f"restarting it in {backoff:.0f} s (restart {self.restarts}). Its running jobs are queued again."
            )
            deadline = time.monotonic() + backoff
            while time.monotonic() < deadline and not self.stopping:
                time.sleep(0.1)
            if self.stopping:
                return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one Celery worker and restart it whenever it dies.")
    parser.add_argument("--name", default="demo@%h", help="Celery node name (default demo@%%h)")
    parser.add_argument("--queues", default="default,gpu,training")
    parser.add_argument("--loglevel", default="WARNING")
    parser.add_argument("extra", nargs="*", help="more celery worker arguments (after --)")
    args = parser.parse_args(argv)
    command = worker_command(args.name, args.queues, args.loglevel, args.extra)
    return Supervisor(command, args.name.replace("%h", socket.gethostname())).run()


if __name__ == "__main__":
    sys.exit(main())
