"""The embedded broker: kombu's filesystem transport made safe for a web server and workers to share.

kombu's filesystem transport (5.7) publishes a message by opening `<time>_<uuid>.<queue>.msg` for
writing and then writing it; its consumer moves any file with that name out of the folder and reads
it. A file caught between the open and the write is read empty and the worker dies with
`JSONDecodeError` (kombu #1551); its fanout exchange table (remote control) is rewritten in place the
same way. This transport keeps the folder layout and fixes the protocol:

- publish atomically: the message is written under a hidden temporary name in the same folder, then
  renamed to its `.msg` name (rename is atomic on POSIX): a consumer sees the whole message or nothing;
- claim atomically: a consumer renames the file into its own `unacked/<pid>-<random>/` folder (exactly
  one rename wins when two consumers race) and deletes it only when the message is acknowledged;
- redeliver what a dead consumer held: each consumer process holds an exclusive lock on its folder
  for its lifetime, and any consumer that finds an unlocked folder (its owner died, even by SIGKILL)
  moves the messages in it back to the queue, as Redis does with its unacked set;
- never raise a broken file into the worker: one that does not parse is moved to `bad/` and logged;
- serve lower `priority` numbers first (as the Redis transport does), then by publish time;
- no broadcast: fanout publishes are dropped. The embedded default runs its worker with remote
  control off; the web process reads worker presence from files (annotation_app.propagation.realtime).

Polling: the consumer lists the queue folder every `polling_interval` seconds (transport option,
0.1 s in the embedded settings). Limits: one machine (one local folder), no remote control.

Transport options: `data_folder_in` (= `data_folder_out`, the queue folder), `processed_folder`
(parent of `unacked/` and `bad/`), `polling_interval`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from queue import Empty

from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes

log = logging.getLogger(__name__)

#: seconds between two scans for folders of dead consumers (also done once when a process starts consuming)
ORPHAN_SCAN_S = 10.0


class _ConsumerState:
    """Per process and broker folder: the locked folder holding the messages taken and not yet acked."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.lock_file = None
        self.last_scan = 0.0


_states: dict[tuple[int, str], _ConsumerState] = {}
_states_mutex = threading.Lock()


def _try_lock(path: Path):
    """An open, exclusively locked file object, or None when another live process holds the lock."""
    handle = open(path, "a+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return handle


def _priority(payload: dict) -> int:
    try:
        value = int((payload.get("properties") or {}).get("priority") or 0)
    except (TypeError, ValueError):
        value = 0
    return max(0, min(9, value))


class Channel(virtual.Channel):
    """A channel over the queue folder; see the module docstring."""

    supports_fanout = False  # fanout publishes are dropped by kombu's virtual exchange

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._taken: dict[str, Path] = {}  # delivery tag -> file in our unacked folder
        self._no_ack_queues: set[str] = set()

    # --- options and folders
    @property
    def _options(self) -> dict:
        return self.connection.client.transport_options

    @property
    def queue_folder(self) -> Path:
        return Path(self._options.get("data_folder_in") or self._options.get("data_folder_out") or "data_in")

    @property
    def _base(self) -> Path:
        return Path(self._options.get("processed_folder") or self.queue_folder.parent)

    @property
    def unacked_root(self) -> Path:
        return self._base / "unacked"

    @property
    def bad_folder(self) -> Path:
        return self._base / "bad"

    # --- publish
    def _put(self, queue, payload, **kwargs):
        folder = self.queue_folder
        stamp = f"{_priority(payload)}-{time.time_ns():020d}_{uuid.uuid4().hex}"
        final = folder / f"{stamp}.{queue}.msg"
        tmp = folder / f".{stamp}.tmp"
        data = str_to_bytes(json.dumps(payload))
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.rename(tmp, final)

    # --- consume
    def _own_folder(self) -> Path:
        """This process's unacked folder (created and locked on first use, again after a fork)."""
        root = self.unacked_root
        with _states_mutex:
            state = _states.setdefault((os.getpid(), str(root)), _ConsumerState())
            if state.folder is None:
                root.mkdir(parents=True, exist_ok=True)
                folder = root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
                folder.mkdir()
                handle = _try_lock(folder.with_suffix(".lock"))
                if handle is None:  # cannot happen for a fresh random name
                    raise OSError(f"cannot lock {folder}")
                state.folder, state.lock_file = folder, handle
            folder = state.folder
            if time.monotonic() - state.last_scan > ORPHAN_SCAN_S:
                state.last_scan = time.monotonic()
                self._restore_orphans(keep=folder)
        return folder

    def _restore_orphans(self, keep: Path) -> None:
        """Put back into the queue the messages of consumers that died (their folder is unlocked)."""
        root = self.unacked_root
        for lock_path in sorted(root.glob("*.lock")):
            folder = lock_path.with_suffix("")
            if folder == keep:
                continue
            handle = _try_lock(lock_path)
            if handle is None:
                continue  # its owner is alive
            try:
                restored = 0
                if folder.is_dir():
                    for name in sorted(os.listdir(folder)):
                        try:
                            os.rename(folder / name, self.queue_folder / name)
                            restored += 1
                        except FileNotFoundError:
                            pass
                    folder.rmdir()
                lock_path.unlink(missing_ok=True)
                if restored:
                    log.warning("embedded broker: %d message(s) of a dead consumer put back in the queue", restored)
            except OSError as exc:
                log.warning("embedded broker: could not restore %s: %s", folder, exc)
            finally:
                handle.close()

    def _get(self, queue):
        suffix = f".{queue}.msg"
        folder = self.queue_folder
        mine = self._own_folder()
        for name in sorted(n for n in os.listdir(folder) if n.endswith(suffix) and not n.startswith(".")):
            taken = mine / name
            try:
                os.rename(folder / name, taken)
            except FileNotFoundError:
                continue  # another consumer won it
            try:
                payload = json.loads(bytes_to_str(taken.read_bytes()))
                if not isinstance(payload, dict):
                    raise ValueError("not a message object")
            except (OSError, ValueError) as exc:
                self.bad_folder.mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(taken, self.bad_folder / name)
                except OSError:
                    pass
                log.error("embedded broker: unreadable message %s moved to %s (%s)", name, self.bad_folder, exc)
                continue
            if queue in self._no_ack_queues:
                taken.unlink(missing_ok=True)
            else:
                tag = (payload.get("properties") or {}).get("delivery_tag")
                if tag:
                    self._taken[tag] = taken
                else:
                    taken.unlink(missing_ok=True)
            return payload
        raise Empty()

    def _forget(self, delivery_tag) -> None:
        path = self._taken.pop(delivery_tag, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def basic_consume(self, queue, no_ack, *args, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue, no_ack=False, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_get(queue, no_ack=no_ack, **kwargs)

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self._forget(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue=requeue)
        self._forget(delivery_tag)

    def _restore(self, message):
        """Redeliver (reject with requeue, warm shutdown): a new file in the queue, then drop ours."""
        super()._restore(message)
        self._forget(message.delivery_tag)

    # --- sizes
    def _size(self, queue):
        suffix = f".{queue}.msg"
        return sum(1 for n in os.listdir(self.queue_folder) if n.endswith(suffix) and not n.startswith("."))

    def _purge(self, queue):
        suffix = f".{queue}.msg"
        count = 0
        for name in os.listdir(self.queue_folder):
            if name.endswith(suffix) and not name.startswith("."):
                try:
                    os.remove(self.queue_folder / name)
                    count += 1
                except FileNotFoundError:
                    pass
        return count


class Transport(virtual.Transport):
    """The embedded transport (`broker_transport = "annotation_app.lib.embedded_broker:Transport"`)."""

    Channel = Channel
    global_state = virtual.BrokerState()
    implements = virtual.Transport.implements.extend(asynchronous=False, exchange_type=frozenset(["direct", "topic"]))
    default_port = 0
    driver_type = "filesystem"
    driver_name = "embedded-filesystem"
    polling_interval = 0.1

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self.state = self.global_state

    def driver_version(self):
        return "1"


def queued_messages(queue_folder: Path, queue: str) -> int:
    """How many messages wait in `queue` (for the workers page)."""
    suffix = f".{queue}.msg"
    try:
        return sum(1 for n in os.listdir(queue_folder) if n.endswith(suffix) and not n.startswith("."))
    except FileNotFoundError:
        return 0
