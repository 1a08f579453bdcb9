"""Which embedded broker: each candidate raced and timed, against Redis (README, "Embedded broker").

1. Race (kombu only, no Celery): a publisher process sends --messages messages of --size bytes while
   this process consumes them as a worker does (and acks). Counts what the consumer got: delivered,
   lost, duplicated, and errors raised into the consumer (kombu's own filesystem transport raises
   JSONDecodeError when it reads a file still being written: kombu #1551). Also the delivery latency.
2. Jobs: the one-command run's stack per broker (runserver + the supervised worker, SQLite database;
   tests/embedded_stack.py), --jobs key-frame propagation jobs sent by --clients scripted browsers that
   follow each job by polling; prints job latency, queued -> first frame (the job's `queued_s` plus
   `first_frame_s`), p50/p95, and the queue wait alone.

    python benchmarks/bench_embedded_broker.py [--brokers files,sqlite,kombu-files,redis] [--jobs 60]

`sqlite` needs SQLAlchemy (`pip install SQLAlchemy`; not a project dependency) and is skipped without
it; `redis` needs a Redis server at --redis (a free database number is used) and is skipped without one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.embedded_stack import DEMO_PASSWORD, ApiClient, EmbeddedStack, demo_ct  # noqa: E402

TRANSPORTS = {
    "files": "annotation_app.lib.embedded_broker:Transport",
    "sqlite": "annotation_app.lib.embedded_broker_sqlite:Transport",
    "kombu-files": "kombu.transport.filesystem:Transport",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


# --- 1. race ---------------------------------------------------------------------------------------
def _connection(kind: str, base: Path):
    from kombu import Connection

    (base / "queue").mkdir(parents=True, exist_ok=True)
    (base / "control").mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(base / "queue"),
        "data_folder_out": str(base / "queue"),
        "processed_folder": str(base / "processed"),
        "control_folder": str(base / "control"),
        "polling_interval": 0.01,
    }
    if kind == "sqlite":
        options = {"sqlite_path": str(base / "broker.sqlite3"), "polling_interval": 0.01}
    return Connection("filesystem://", transport=TRANSPORTS[kind], transport_options=options)


def _queue():
    from kombu import Exchange, Queue

    return Queue("bench", Exchange("bench", type="direct"), routing_key="bench")


def _publisher(kind: str, base: str, count: int, size: int) -> None:
    with _connection(kind, Path(base)) as conn:
        producer = conn.Producer(serializer="json")
        queue = _queue()
        pad = "x" * size
        for i in range(count):
            producer.publish(
                {"i": i, "t": time.time(), "pad": pad}, exchange=queue.exchange, routing_key="bench", declare=[queue]
            )


def race(kind: str, count: int, size: int, timeout: float) -> dict:
    base = Path(tempfile.mkdtemp(prefix=f"bench-race-{kind}-"))
    with _connection(kind, base) as conn:  # declare the queue first
        conn.SimpleQueue(_queue()).close()
    publisher = multiprocessing.get_context("spawn").Process(target=_publisher, args=(kind, str(base), count, size))
    seen: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []
    t0 = time.monotonic()
    publisher.start()
    deadline = t0 + timeout
    while len(set(seen)) < count and time.monotonic() < deadline:
        try:
            with _connection(kind, base) as conn, conn.SimpleQueue(_queue()) as simple:
                while len(set(seen)) < count and time.monotonic() < deadline:
                    try:
                        message = simple.get(block=True, timeout=1)
                    except simple.Empty:
                        if not publisher.is_alive() and len(set(seen)) < count:
                            break
                        continue
                    latencies.append(time.time() - message.payload["t"])
                    seen.append(message.payload["i"])
                    message.ack()
        except Exception as exc:  # what kills a Celery worker: record it and reconnect
            errors.append(f"{type(exc).__name__}: {exc}"[:120])
        if not publisher.is_alive() and len(set(seen)) < count and time.monotonic() > deadline - timeout / 2:
            break
    publisher.join(timeout=30)
    elapsed = time.monotonic() - t0
    return {
        "delivered": len(set(seen)),
        "lost": count - len(set(seen)),
        "duplicates": len(seen) - len(set(seen)),
        "errors": errors,
        "rate": len(seen) / elapsed if elapsed else 0.0,
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p95_ms": pct(latencies, 0.95) * 1000,
    }


# --- 2. jobs ---------------------------------------------------------------------------------------
def _redis_url(base: str) -> str | None:
    try:
        import redis

        for db in range(14, 0, -1):
            client = redis.Redis.from_url(f"{base}/{db}", socket_connect_timeout=1)
            if client.set("bench:embedded-broker:lock", "1", nx=True, ex=1800):
                client.flushdb()
                client.set("bench:embedded-broker:lock", "1", ex=1800)
                return f"{base}/{db}"
    except Exception:
        return None
    return None


def jobs(kind: str, n_jobs: int, clients: int, redis_base: str) -> dict | None:
    env = {"EMBEDDED_BROKER": kind}
    if kind == "redis":
        url = _redis_url(redis_base)
        if url is None:
            return None
        env = {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url}
    var = Path(tempfile.mkdtemp(prefix=f"bench-jobs-{kind}-")) / "var"
    with EmbeddedStack(var, env=env) as stack:
        stack.prepare()
        stack.start_web()
        manager = ApiClient(stack.base).login("demo-manager", DEMO_PASSWORD)
        stack.start_worker(manager, loglevel="WARNING")
        case = demo_ct(manager)
        depth = case["shape"][0]
        done: list[dict] = []
        errors: list[str] = []
        lock = threading.Lock()
        remaining = [n_jobs + 1]  # one warm-up job (model load, first encode) is not counted

        def browser(seed: int) -> None:
            client = ApiClient(stack.base).login("demo-annotator", DEMO_PASSWORD)
            try:
                while True:
                    with lock:
                        if remaining[0] <= 0:
                            return
                        remaining[0] -= 1
                        warmup = remaining[0] == n_jobs
                    target = client.post("/api/targets/", {"case": case["id"], "label": "lesion"})["id"]
                    frame = 2 + (seed + len(done)) % (depth - 4)
                    client.post(
                        "/api/prompts/",
                        {"target": target, "frame": frame, "kind": "box", "payload": {"box": [18, 18, 38, 38]}},
                    )
                    job = client.post(f"/api/targets/{target}/propagate/", {"kind": "key_frame"})
                    while True:
                        row = client.get(f"/api/propagation-jobs/{job['id']}/")
                        if row["status"] in ("succeeded", "failed", "cancelled"):
                            break
                        time.sleep(0.4)
                    if row["status"] != "succeeded":
                        raise RuntimeError(f"job {row['id']} {row['status']}: {row['error']}")
                    if not warmup:
                        with lock:
                            done.append(row)
                    time.sleep(0.1)
            except Exception as exc:
                with lock:
                    errors.append(str(exc))

        threads = [threading.Thread(target=browser, args=(i,)) for i in range(clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        if errors:
            raise SystemExit(f"{kind}: {errors[:3]}\n{stack.log('worker')}")
    first = [r["timings"]["queued_s"] + r["timings"]["first_frame_s"] for r in done]
    waits = [r["timings"]["queued_s"] for r in done]
    return {
        "jobs": len(done),
        "p50": pct(first, 0.5),
        "p95": pct(first, 0.95),
        "mean": statistics.fmean(first),
        "wait_p50": pct(waits, 0.5),
        "wait_p95": pct(waits, 0.95),
        "elapsed": elapsed,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", default="files,sqlite,kombu-files,redis")
    p.add_argument("--messages", type=int, default=2000, help="messages in the race")
    p.add_argument("--size", type=int, default=100_000, help="bytes of padding per race message")
    p.add_argument("--jobs", type=int, default=60, help="timed jobs per broker")
    p.add_argument("--clients", type=int, default=2, help="scripted browsers sending jobs at once")
    p.add_argument("--redis", default="redis://127.0.0.1:6379")
    p.add_argument("--skip-race", action="store_true")
    p.add_argument("--skip-jobs", action="store_true")
    args = p.parse_args()
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        if "sqlite" in brokers:
            print("sqlite: skipped (pip install SQLAlchemy to include it)")
            brokers.remove("sqlite")
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    if not args.skip_race:
        print(f"\n1. race: {args.messages} messages of {args.size // 1000} kB, one publisher process, one consumer")
        header = ("broker", "delivered", "lost", "dups", "errors", "msg/s", "p50 ms", "p95 ms")
        print("{:<12} {:>9} {:>5} {:>5} {:>6} {:>7} {:>7} {:>7}".format(*header))
        for kind in [b for b in brokers if b in TRANSPORTS]:
            r = race(kind, args.messages, args.size, timeout=300)
            print(
                f"{kind:<12} {r['delivered']:>9} {r['lost']:>5} {r['duplicates']:>5} {len(r['errors']):>6} "
                f"{r['rate']:>7.0f} {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f}"
            )
            for e in sorted(set(r["errors"]))[:3]:
                print(f"{'':<12} error: {e}")
    if not args.skip_jobs:
        print(f"\n2. jobs: {args.jobs} key-frame jobs per broker, {args.clients} browsers polling every 0.4 s")
        header = ("broker", "jobs", "first frame p50", "p95", "queue wait p50", "p95", "wall")
        print("{:<12} {:>5} {:>16} {:>7} {:>15} {:>7} {:>6}".format(*header))
        for kind in brokers:
            r = jobs(kind, args.jobs, args.clients, args.redis)
            if r is None:
                print(f"{kind:<12} skipped (no Redis at {args.redis})")
                continue
            print(
                f"{kind:<12} {r['jobs']:>5} {r['p50']:>15.3f}s {r['p95']:>6.3f}s {r['wait_p50']:>14.3f}s "
                f"{r['wait_p95']:>6.3f}s {r['elapsed']:>5.0f}s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
