"""Soak of the embedded default, and a worker killed under the one-command run's supervisor.

Both start the web server and the supervised worker exactly as scripts/run.sh does (SQLite, the
embedded broker, media in a temporary var dir; tests/embedded_stack.py) and drive them over HTTP.

The soak: four scripted annotators, at a browser's pace, create targets, place box and click prompts,
start SOAK_JOBS (default 300) propagation jobs and follow each one by polling its frames and its row
every 0.4 s, save brushed revisions and send event batches, while a manager page polls the workers
and the job list. At the end every job succeeded exactly once (one attempt, one revision with its
key), the worker never died, and every revision and event sent is stored.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from tests.embedded_stack import DEMO_PASSWORD, ApiClient, EmbeddedStack, demo_ct

SOAK_JOBS = int(os.environ.get("SOAK_JOBS", "300"))
ANNOTATORS = 4
POLL_S = 0.4  # the browser's JobService interval
FINISHED = {"succeeded", "failed", "cancelled"}


def _events(target: int, kinds: list[str]) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [
        {"client_event_id": str(uuid.uuid4()), "kind": k, "client_ts": now, "target": target, "payload": {"soak": True}}
        for k in kinds
    ]


def _rle_square(height: int, width: int, x0: int, y0: int, size: int) -> list[int]:
    """Row-major runs starting with zeros (maskcodec.encode_slice_rle) of a filled square."""
    flat = [0] * (height * width)
    for y in range(y0, y0 + size):
        for x in range(x0, x0 + size):
            flat[y * width + x] = 1
    runs, value, count = [], 0, 0
    for v in flat:
        if v == value:
            count += 1
        else:
            runs.append(count)
            value, count = v, 1
    runs.append(count)
    return runs


class Soak:
    def __init__(self, base: str, case: dict, jobs: int):
        self.base, self.case, self.jobs = base, case, jobs
        self.lock = threading.Lock()
        self.started = 0
        self.job_ids: list[int] = []
        self.revision_ids: list[int] = []
        self.event_ids: list[str] = []
        self.errors: list[str] = []
        self.latencies: list[float] = []
        self.calls = 0
        self.done = threading.Event()

    def take_job_slot(self) -> bool:
        with self.lock:
            if self.started >= self.jobs:
                return False
            self.started += 1
            return True

    def follow(self, client: ApiClient, job: dict) -> dict:
        """Poll as the browser does: frames since the cursor, then the job row, every 0.4 s."""
        cursor, t0, first = 0, time.monotonic(), None
        deadline = t0 + 300
        while time.monotonic() < deadline:
            chunk = client.get(f"/api/propagation-jobs/{job['id']}/frames/?since={cursor}")
            if chunk["frames"] and first is None:
                first = time.monotonic() - t0
            cursor = chunk["cursor"]
            row = client.get(f"/api/propagation-jobs/{job['id']}/")
            if row["status"] in FINISHED:
                if first is not None:
                    with self.lock:
                        self.latencies.append(first)
                return row
            time.sleep(POLL_S)
        raise AssertionError(f"job {job['id']} did not finish in 300 s")

    def send_events(self, client: ApiClient, target: int, kinds: list[str]) -> None:
        batch = _events(target, kinds)
        result = client.post("/api/events/", batch)
        assert result["created"] == len(batch), result
        with self.lock:
            self.event_ids += [e["client_event_id"] for e in batch]

    def propagate(self, client: ApiClient, target: int, kind: str, frame_range=None) -> dict | None:
        if not self.take_job_slot():
            return None
        body: dict = {"kind": kind}
        if frame_range is not None:
            body["frame_range"] = frame_range
        job = client.post(f"/api/targets/{target}/propagate/", body)
        with self.lock:
            self.job_ids.append(job["id"])
        row = self.follow(client, job)
        assert row["status"] == "succeeded", row
        return row

    def annotator(self, seed: int) -> None:
        rng = random.Random(seed)
        client = ApiClient(self.base).login("demo-annotator", DEMO_PASSWORD)
        depth, height, width = self.case["shape"]
        pace = lambda: time.sleep(rng.uniform(0.02, 0.12))  # noqa: E731  (a browser between two actions)
        try:
            while not self.done.is_set():
                target = client.post("/api/targets/", {"case": self.case["id"], "label": "lesion"})["id"]
                self.send_events(client, target, ["target_opened"])
                key = rng.randrange(2, depth - 2)
                x0, y0 = rng.randrange(4, width // 2), rng.randrange(4, height // 2)
                client.post(
                    "/api/prompts/",
                    {"target": target, "frame": key, "kind": "box", "payload": {"box": [x0, y0, x0 + 16, y0 + 16]}},
                )
                pace()
                if self.propagate(client, target, "key_frame") is None:
                    break
                pace()
                client.post(
                    "/api/prompts/",
                    {"target": target, "frame": key, "kind": "point",
                     "payload": {"points": [[x0 + 8, y0 + 8]], "labels": [1]}},
                )  # fmt: skip
                # one lesion in five gets a (short) full propagation, the others the key frame again
                full = rng.random() < 0.2
                row = self.propagate(
                    client, target, "propagate" if full else "key_frame", [key - 2, key + 2] if full else None
                )
                if row is None:
                    break
                pace()
                revision = client.post(
                    "/api/mask-revisions/",
                    {"target": target, "source": "human", "base_revision": row["result_revision"],
                     "slices": {str(key): {"rle": _rle_square(height, width, x0, y0, 10)}}},
                )  # fmt: skip
                with self.lock:
                    self.revision_ids.append(revision["id"])
                self.send_events(
                    client, target, ["prompt_placed", "propagation_requested", "propagation_received", "edit_stroke"]
                )
        except Exception as exc:  # reported by the test
            with self.lock:
                self.errors.append(f"annotator {seed}: {type(exc).__name__}: {exc}")
        finally:
            with self.lock:
                self.calls += client.calls

    def manager(self) -> None:
        """The manager page's polling: workers and the job list, once a second."""
        client = ApiClient(self.base).login("demo-manager", DEMO_PASSWORD)
        try:
            while not self.done.wait(1.0):
                client.get("/api/workers/")
                client.get("/api/propagation-jobs/?status=queued")
        except Exception as exc:
            with self.lock:
                self.errors.append(f"manager: {type(exc).__name__}: {exc}")
        finally:
            with self.lock:
                self.calls += client.calls


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A var dir migrated and loaded with the small demo once; each test starts from a copy."""
    var = tmp_path_factory.mktemp("embedded-template") / "var"
    EmbeddedStack(var).prepare()
    return var


def _stack_from(prepared, tmp_path, env: dict | None = None) -> EmbeddedStack:
    shutil.copytree(prepared, tmp_path / "var")
    return EmbeddedStack(tmp_path / "var", env=env)


def _db(stack: EmbeddedStack) -> sqlite3.Connection:
    return sqlite3.connect(stack.var / "db.sqlite3", timeout=30)


def _jobs_done_once(stack: EmbeddedStack, job_ids: list[int]) -> None:
    db = _db(stack)
    try:
        marks = ",".join("?" * len(job_ids))
        rows = db.execute(
            f"SELECT id, status, attempts, idempotency_key, result_revision_id, error "
            f"FROM propagation_propagationjob WHERE id IN ({marks})",
            job_ids,
        ).fetchall()
        assert len(rows) == len(job_ids)
        bad = [r for r in rows if r[1] != "succeeded" or r[2] != 1 or r[4] is None]
        assert not bad, f"jobs not succeeded exactly once: {bad[:5]}"
        keys = [r[3] for r in rows]
        counts = dict(
            db.execute(
                f"SELECT job_key, COUNT(*) FROM annotations_maskrevision WHERE job_key IN ({marks}) GROUP BY job_key",
                keys,
            ).fetchall()
        )
        assert all(counts.get(k) == 1 for k in keys), "a job wrote no revision or more than one"
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_soak_of_the_embedded_default(prepared, tmp_path):
    with _stack_from(prepared, tmp_path) as stack:
        stack.start_web()
        manager = ApiClient(stack.base).login("demo-manager", DEMO_PASSWORD)
        stack.start_worker(manager)
        worker_pid = stack.worker_pid()
        case = demo_ct(manager)
        soak = Soak(stack.base, case, SOAK_JOBS)
        threads = [threading.Thread(target=soak.annotator, args=(i,)) for i in range(ANNOTATORS)]
        threads.append(threading.Thread(target=soak.manager))
        t0 = time.monotonic()
        for t in threads[:-1]:
            t.start()
        threads[-1].start()
        for t in threads[:-1]:
            t.join(timeout=540)
        soak.done.set()
        threads[-1].join(timeout=30)
        elapsed = time.monotonic() - t0
        assert not soak.errors, "\n".join(soak.errors[:5]) + f"\nworker log:\n{stack.log('worker')}"
        assert len(soak.job_ids) == SOAK_JOBS

        # the worker never died: same process, no restart, nothing set aside by the broker
        assert stack.worker_pid() == worker_pid
        worker = stack.live_worker(manager)
        assert worker is not None and worker.get("restarts") == 0, worker
        log = stack.log("worker", tail=200_000)
        assert "restarting it" not in log and "Unrecoverable error" not in log, log[-3000:]
        assert not (stack.var / "broker" / "processed" / "bad").exists()

        _jobs_done_once(stack, soak.job_ids)
        db = _db(stack)
        try:
            marks = ",".join("?" * len(soak.revision_ids))
            stored = db.execute(
                f"SELECT COUNT(*) FROM annotations_maskrevision WHERE id IN ({marks}) AND source = 'human'",
                soak.revision_ids,
            ).fetchone()[0]
            assert stored == len(soak.revision_ids)
            marks = ",".join("?" * len(soak.event_ids))
            events = db.execute(
                f"SELECT COUNT(*) FROM annotations_interactionevent WHERE client_event_id IN ({marks})",
                [e.replace("-", "") for e in soak.event_ids],
            ).fetchone()[0]
            assert events == len(soak.event_ids)
        finally:
            db.close()
        latencies = sorted(soak.latencies)
        p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
        print(
            f"\nsoak: {SOAK_JOBS} jobs, {len(soak.revision_ids)} revisions, {len(soak.event_ids)} events, "
            f"{soak.calls} API calls in {elapsed:.0f} s; first frame seen by the poller p50 {p50:.2f} s, "
            f"p95 {p95:.2f} s"
        )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_killed_under_the_supervisor_comes_back_and_loses_no_job(prepared, tmp_path):
    # slow frames, so the job is surely running when the worker is killed
    env = {"MEDSAM2_TEST_FRAME_DELAY_S": "0.4", "PROPAGATION_PRESENCE_INTERVAL_S": "1"}
    with _stack_from(prepared, tmp_path, env) as stack:
        stack.start_web()
        client = ApiClient(stack.base).login("demo-annotator", DEMO_PASSWORD)
        first = stack.start_worker(client)
        case = demo_ct(client)
        jobs = []
        for frame in (5, 7):
            target = client.post("/api/targets/", {"case": case["id"], "label": "lesion"})["id"]
            client.post(
                "/api/prompts/",
                {"target": target, "frame": frame, "kind": "box", "payload": {"box": [20, 20, 40, 40]}},
            )
            jobs.append(client.post(f"/api/targets/{target}/propagate/", {}))
        deadline = time.monotonic() + 120
        while client.get(f"/api/propagation-jobs/{jobs[0]['id']}/")["frames_done"] < 2:
            assert time.monotonic() < deadline, stack.log("worker")
            time.sleep(0.2)
        victim = stack.worker_pid()
        assert victim is not None and victim == first["pid"]
        os.kill(victim, signal.SIGKILL)

        # the workers page stops listing it at once, and lists the restarted one by itself
        gone_by = time.monotonic() + 5
        while stack.live_worker(client) and stack.live_worker(client).get("pid") == victim:
            assert time.monotonic() < gone_by, "a killed worker is still listed as live"
            time.sleep(0.2)
        back = stack.wait_for_worker(client, timeout=120, not_pid=victim)
        assert back["restarts"] == 1
        assert "was killed by SIGKILL" in stack.log("worker") and "restarting it" in stack.log("worker")

        deadline = time.monotonic() + 180
        rows = []
        while time.monotonic() < deadline:
            rows = [client.get(f"/api/propagation-jobs/{j['id']}/") for j in jobs]
            if all(r["status"] in FINISHED for r in rows):
                break
            time.sleep(0.5)
        assert [r["status"] for r in rows] == ["succeeded", "succeeded"], (rows, stack.log("worker"))
        assert rows[0]["attempts"] == 2  # the killed run, then the recovered one
        _db_rows = _db(stack).execute(
            "SELECT job_key, COUNT(*) FROM annotations_maskrevision WHERE job_key != '' GROUP BY job_key"
        ).fetchall()
        assert sorted(n for _, n in _db_rows) == [1, 1]
