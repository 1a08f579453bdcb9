"""The embedded broker (annotation_app.lib.embedded_broker) through kombu, without Celery or Django.

A consumer never sees a half-written message, a message taken by a consumer that died is delivered
again, a broken file is set aside instead of raised, and lower priority numbers go first.
"""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

TRANSPORT = "annotation_app.lib.embedded_broker:Transport"
# Helper processes are spawned, not forked: a fork inherits kombu's pooled Redis connections of earlier
# tests in the same session, and kombu's after-fork cleanup then blocks closing them.


def _connection(base: Path) -> Connection:
    (base / "queue").mkdir(parents=True, exist_ok=True)
    return Connection(
        "filesystem://",
        transport=TRANSPORT,
        transport_options={
            "data_folder_in": str(base / "queue"),
            "data_folder_out": str(base / "queue"),
            "processed_folder": str(base / "processed"),
            "polling_interval": 0.01,
        },
    )


def _queue(name: str = "jobs") -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def _publish(base: str, count: int, size: int) -> None:
    with _connection(Path(base)) as conn:
        producer = conn.Producer(serializer="json")
        queue = _queue()
        for i in range(count):
            producer.publish({"i": i, "pad": "x" * size}, exchange=queue.exchange, routing_key="jobs", declare=[queue])


def _drain(conn: Connection, expected: int, timeout: float = 60.0, ack: bool = True) -> list[dict]:
    got: list[dict] = []
    with conn.SimpleQueue(_queue(), serializer="json") as simple:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            try:
                message = simple.get(block=True, timeout=1)
            except simple.Empty:
                continue
            got.append(message.payload)
            if ack:
                message.ack()
    return got


def test_a_consumer_racing_a_publisher_never_reads_a_partial_message(tmp_path):
    """kombu #1551: the stock transport hands out a file that is still being written."""
    count = 400
    publisher = multiprocessing.get_context("spawn").Process(target=_publish, args=(str(tmp_path), count, 200_000))
    publisher.start()
    try:
        with _connection(tmp_path) as conn:
            got = _drain(conn, count)
    finally:
        publisher.join(timeout=60)
    assert sorted(m["i"] for m in got) == list(range(count))
    assert all(len(m["pad"]) == 200_000 for m in got)
    assert not (tmp_path / "processed" / "bad").exists()
    leftover = [n for n in os.listdir(tmp_path / "queue")]
    assert leftover == []


def _take_and_die(base: str) -> None:
    with _connection(Path(base)) as conn:
        with conn.SimpleQueue(_queue(), serializer="json") as simple:
            simple.get(block=True, timeout=10)  # taken, never acked
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_message_held_by_a_killed_consumer_is_delivered_again(tmp_path):
    _publish(str(tmp_path), 1, 10)
    victim = multiprocessing.get_context("spawn").Process(target=_take_and_die, args=(str(tmp_path),))
    victim.start()
    victim.join(timeout=30)
    assert victim.exitcode == -signal.SIGKILL
    assert not [n for n in os.listdir(tmp_path / "queue") if n.endswith(".msg")]  # it was taken
    with _connection(tmp_path) as conn:
        got = _drain(conn, 1, timeout=10)
    assert [m["i"] for m in got] == [0]
    held = [p for p in (tmp_path / "processed" / "unacked").rglob("*.msg")]
    assert held == []  # acked: gone for good


def test_an_unacked_message_stays_held_until_acked_and_a_live_holder_keeps_it(tmp_path):
    _publish(str(tmp_path), 1, 10)
    with _connection(tmp_path) as conn, conn.SimpleQueue(_queue(), serializer="json") as simple:
        message = simple.get(block=True, timeout=10)
        held = list((tmp_path / "processed" / "unacked").rglob("*.msg"))
        assert len(held) == 1
        # a consumer in another process sees the holder alive and leaves the message alone
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            assert pool.apply(_count_available, (str(tmp_path),)) == 0
        message.ack()
        assert list((tmp_path / "processed" / "unacked").rglob("*.msg")) == []


def _count_available(base: str) -> int:
    with _connection(Path(base)) as conn:
        return len(_drain(conn, 1, timeout=1.5))


def test_a_broken_message_file_is_set_aside_not_raised(tmp_path, caplog):
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir(parents=True)
    (queue_dir / "0-00000000000000000001_x.jobs.msg").write_text("")  # what kombu #1551 reads
    _publish(str(tmp_path), 1, 10)
    with _connection(tmp_path) as conn:
        got = _drain(conn, 1, timeout=10)
    assert [m["i"] for m in got] == [0]
    assert [p.name for p in (tmp_path / "processed" / "bad").iterdir()] == ["0-00000000000000000001_x.jobs.msg"]


def test_lower_priority_numbers_are_served_first(tmp_path):
    with _connection(tmp_path) as conn:
        producer = conn.Producer(serializer="json")
        queue = _queue()
        for i, priority in enumerate([6, 6, 0, 6, 0]):
            producer.publish({"i": i}, exchange=queue.exchange, routing_key="jobs", declare=[queue], priority=priority)
        got = _drain(conn, 5, timeout=10)
    assert [m["i"] for m in got] == [2, 4, 0, 1, 3]


def test_published_files_are_complete_json(tmp_path):
    _publish(str(tmp_path), 3, 10)
    files = sorted((tmp_path / "queue").iterdir())
    assert len(files) == 3 and all(f.name.endswith(".jobs.msg") for f in files)
    assert all(json.loads(f.read_text())["properties"]["delivery_tag"] for f in files)


@pytest.mark.parametrize("name", ["files", "kombu-files"])
def test_settings_choose_the_embedded_broker(name, tmp_path):
    """`files` by default; kombu's own transport stays selectable for the benchmark's comparison."""
    import subprocess
    import sys

    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env.update(ANNOTATION_VAR_DIR=str(tmp_path), EMBEDDED_BROKER=name)
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'annotation_app.settings'); django.setup();"
        "from annotation_app.celery import app; c = app.connection_for_write();"
        "print(type(c.transport).__module__, app.conf.worker_enable_remote_control)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    module, remote = out.stdout.split()
    expected = {
        "files": ("annotation_app.lib.embedded_broker", "False"),
        "kombu-files": ("kombu.transport.filesystem", "True"),
    }[name]
    assert (module, remote) == expected
