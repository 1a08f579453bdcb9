"""Short-lived shared state between web and workers, kept in Redis (no torch, no Django models).

- Partial results of a running job: each frame the worker finishes is appended with a sequence
  number (1, 2, ...), so the browser asks `GET /frames/?since=<cursor>` for what is new.
- Worker liveness: every worker refreshes `propagation:worker:<node>` (TTL) with its queues and device;
  the web process reads these to choose a queue and to list workers.
- Case affinity: the worker that holds a case's image features records itself for the case, so the
  next job of that case goes to that worker's own queue (`gpu.<node>`) and skips re-encoding.

With the embedded broker (no Redis) the same API stores partial results in files under VAR_DIR, and
worker liveness in VAR_DIR/workers/<node>.json (written atomically; an entry counts while it is younger
than its TTL and, on this machine, while its process is alive, so a killed worker vanishes at once).
Case affinity is absent there (everything goes to the shared `gpu` queue).
"""

import json
import logging
import os
import socket
import time
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

PARTIAL_TTL_S = 6 * 3600
WORKER_TTL_S = 30
AFFINITY_TTL_S = 3600


def _broker_url() -> str:
    from annotation_app.celery import app

    return str(app.conf.broker_url or "")


_clients: dict[str, object] = {}


def redis_client():
    """A redis client on the broker's Redis, or None when the broker is not Redis."""
    url = _broker_url()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = _clients.get(url)
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        _clients[url] = client
    return client


# --- partial results -------------------------------------------------------------------------------
def _frames_key(job_id: int) -> str:
    return f"propagation:job:{job_id}:frames"


def _partials_dir(job_id: int) -> Path:
    return Path(settings.VAR_DIR) / "job-frames" / str(job_id)


def publish_frame(job_id: int, frame: int, rle: list[int], object_score: float, iou: float) -> bool:
    """Append one finished frame (run-length mask, see maskcodec.encode_slice_rle) to the job's stream.

    Best effort: the stream only shows frames early; the job's revision is the result. With Redis down
    (restarting, say) the frame is dropped with a warning and False is returned, and the job goes on."""
    item = json.dumps({"frame": int(frame), "rle": rle, "object_score": object_score, "iou": iou})
    client = redis_client()
    if client is not None:
        import redis

        try:
            pipe = client.pipeline()
            pipe.rpush(_frames_key(job_id), item)
            pipe.expire(_frames_key(job_id), PARTIAL_TTL_S)
            pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            log.warning("job %s: frame %s not streamed (Redis unreachable: %s); the revision will hold it",
                        job_id, frame, exc)
            return False
        return True
    folder = _partials_dir(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    seq = len(os.listdir(folder)) + 1
    tmp = folder / f".{seq:08d}.tmp"
    tmp.write_text(item)
    tmp.rename(folder / f"{seq:08d}.json")
    return True


def read_frames(job_id: int, since: int = 0) -> tuple[dict[str, dict], int]:
    """Frames published after cursor `since`: ({"<frame>": {rle, object_score, iou}}, new cursor).

    A frame computed twice (forward then backward pass) appears once, with its latest value."""
    client = redis_client()
    if client is not None:
        raw = client.lrange(_frames_key(job_id), since, -1)
    else:
        folder = _partials_dir(job_id)
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json")) if folder.is_dir() else []
        raw = [(folder / n).read_text() for n in names[since:]]
    frames: dict[str, dict] = {}
    for entry in raw:
        item = json.loads(entry)
        frames[str(item.pop("frame"))] = item
    return frames, since + len(raw)


def read_frames_count(job_id: int) -> int:
    """How many frames the job has published (the cursor after reading everything)."""
    client = redis_client()
    if client is not None:
        return int(client.llen(_frames_key(job_id)))
    folder = _partials_dir(job_id)
    return len([n for n in os.listdir(folder) if n.endswith(".json")]) if folder.is_dir() else 0


def clear_frames(job_id: int) -> None:
    client = redis_client()
    if client is not None:
        client.delete(_frames_key(job_id))
        return
    folder = _partials_dir(job_id)
    if folder.is_dir():
        for name in os.listdir(folder):
            (folder / name).unlink(missing_ok=True)


# --- worker liveness and case affinity ---------------------------------------------------------------
def _worker_key(node: str) -> str:
    return f"propagation:worker:{node}"


def worker_queue(node: str) -> str:
    """The queue only worker `node` consumes (next to the shared `gpu` queue)."""
    return f"gpu.{node}"


def _presence_dir() -> Path:
    return Path(settings.VAR_DIR) / "workers"


def _presence_file(node: str) -> Path:
    return _presence_dir() / f"{node.replace('/', '_')}.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def beat_worker(node: str, queues: list[str], device: str, pid: int, **extra) -> None:
    """Say that worker `node` is alive (for WORKER_TTL_S seconds); `extra` (started_at, restarts,
    running jobs) is shown on the workers pages."""
    entry = {
        "name": node,
        "queues": queues,
        "device": device,
        "pid": pid,
        "host": socket.gethostname(),
        "at": time.time(),
        "ttl": WORKER_TTL_S,
        **extra,
    }
    client = redis_client()
    if client is not None:
        client.set(_worker_key(node), json.dumps(entry), ex=WORKER_TTL_S)
        return
    folder = _presence_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = _presence_file(node)
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, final)


def forget_worker(node: str) -> None:
    client = redis_client()
    if client is not None:
        client.delete(_worker_key(node))
        return
    _presence_file(node).unlink(missing_ok=True)


def _file_entry_alive(entry: dict, now: float) -> bool:
    if now - float(entry.get("at", 0)) > float(entry.get("ttl", WORKER_TTL_S)):
        return False
    if entry.get("host") == socket.gethostname() and entry.get("pid"):
        return _pid_alive(int(entry["pid"]))
    return True


def live_workers() -> list[dict]:
    """Workers whose liveness has not expired: [{name, queues, device, pid, host, at, ...}]."""
    client = redis_client()
    if client is None:
        folder = _presence_dir()
        out = []
        now = time.time()
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if _file_entry_alive(entry, now):
                out.append(entry)
        return out
    keys = sorted(client.scan_iter(match=_worker_key("*"), count=200))
    out = []
    for value in client.mget(keys) if keys else []:
        if value:
            out.append(json.loads(value))
    return out


def worker_alive(node: str) -> bool:
    client = redis_client()
    if client is None:
        try:
            entry = json.loads(_presence_file(node).read_text())
        except (OSError, ValueError):
            return False
        return _file_entry_alive(entry, time.time())
    return bool(client.exists(_worker_key(node)))


def _affinity_key(case_id: int) -> str:
    return f"propagation:case:{case_id}:worker"


def set_case_affinity(case_id: int, node: str) -> None:
    client = redis_client()
    if client is not None:
        client.set(_affinity_key(case_id), node, ex=AFFINITY_TTL_S)


def case_affinity(case_id: int) -> str | None:
    client = redis_client()
    if client is None:
        return None
    value = client.get(_affinity_key(case_id))
    return value.decode() if value else None


def queue_lengths(names: list[str]) -> dict[str, int]:
    """Messages waiting in each queue: Redis LLEN of the lists kombu keeps per queue and priority
    (`name` for priority 0, `name\x06\x16<p>` for p in 3, 6, 9)."""
    client = redis_client()
    if client is None:
        return {name: _embedded_queue_length(name) for name in names}
    pipe = client.pipeline()
    for name in names:
        for key in _priority_lists(name):
            pipe.llen(key)
    counts = iter(pipe.execute())
    return {name: sum(int(next(counts)) for _ in _priority_lists(name)) for name in names}


def _priority_lists(name: str) -> list[str]:
    return [name] + [f"{name}\x06\x16{p}" for p in (3, 6, 9)]


def _embedded_queue_length(name: str) -> int:
    """Messages waiting in the embedded broker's queue folder (0 for brokers that keep no such folder)."""
    from annotation_app.celery import app
    from annotation_app.lib.embedded_broker import queued_messages

    folder = (app.conf.broker_transport_options or {}).get("data_folder_in")
    return queued_messages(Path(folder), name) if folder else 0
