"""The task contract: every Celery task by name, its queue and its arguments, and the one way to send them.

The web process never imports worker code (or torch): it names a task here and `send`s it. Workers
(`inference_worker/tasks/`) register exactly these names with `@contract_task(TASK)`, the Celery app
routes each name to its queue from `routes()`, and `tests/test_task_contract.py` fails when a task sent
from here has no registered worker function, or a worker registers a name this module does not know.

Adding a task: declare a `Task` below and add it to `ALL`, register the worker function with
`contract_task(TASK)`, and send it with `send(TASK, *args)`.

Arguments are primary keys (JSON numbers): the worker re-reads the row, so a message never carries
state that can go stale. `send` publishes after the current transaction commits (at once outside
one), so a worker never looks for a row that is not there yet; a broker that cannot be reached is
reported through `on_error` instead of leaving a row queued with no message that would run it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass

from celery import current_app, shared_task
from django.db import transaction

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "default"  # CPU: ingest, checkpoint checks, health
GPU_QUEUE = "gpu"  # propagation, one job at a time per device
TRAINING_QUEUE = "training"  # fine-tuning and its evaluation: long, one run at a time per device
QUEUES = (DEFAULT_QUEUE, GPU_QUEUE, TRAINING_QUEUE)


@dataclass(frozen=True)
class Task:
    """One Celery task: its registered name, the queue it is routed to and its positional arguments."""

    name: str
    queue: str
    args: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ValueError(f"{self.name}: unknown queue {self.queue!r}")


PING = Task("inference_worker.tasks.health.ping", DEFAULT_QUEUE, ("payload",))
INGEST = Task("inference_worker.tasks.ingest.ingest_upload", DEFAULT_QUEUE, ("case_id",))
VERIFY_CHECKPOINT = Task("inference_worker.tasks.training.verify_checkpoint", DEFAULT_QUEUE, ("version_id",))
PROPAGATE = Task("inference_worker.tasks.propagation.propagate_target", GPU_QUEUE, ("job_id",))
FINE_TUNE = Task("inference_worker.tasks.training.fine_tune", TRAINING_QUEUE, ("run_id",))
PACS_IMPORT = Task("inference_worker.tasks.pacs.import_series", DEFAULT_QUEUE, ("import_id",))
PACS_SEND = Task("inference_worker.tasks.pacs.send_seg", DEFAULT_QUEUE, ("send_id",))
EXPORT = Task("inference_worker.tasks.export.run_export_job", DEFAULT_QUEUE, ("job_id",))

ALL: tuple[Task, ...] = (PING, INGEST, VERIFY_CHECKPOINT, PROPAGATE, FINE_TUNE, PACS_IMPORT, PACS_SEND, EXPORT)
BY_NAME = {task.name: task for task in ALL}


def routes() -> dict[str, dict[str, str]]:
    """Celery's `task_routes`: each task name to its queue."""
    return {task.name: {"queue": task.queue} for task in ALL}


def send(
    task: Task,
    *args: int | str,
    queue: str | None = None,
    task_id: str | None = None,
    priority: int | None = None,
    on_error: Callable[[str], object] | None = None,
) -> None:
    """Publish `task(*args)` once the current transaction commits (at once outside a transaction).

    `queue` overrides the contract's queue (a worker's own `gpu.<node>` queue, for instance);
    `on_error(message)` is called when the broker refuses the message, which is then logged, not raised.
    """
    if len(args) != len(task.args):
        raise TypeError(f"{task.name} takes ({', '.join(task.args)}), got {len(args)} argument(s)")

    def publish() -> None:
        options: dict = {"queue": queue or task.queue}
        if task_id:
            options["task_id"] = task_id
        if priority is not None:
            options["priority"] = priority
        try:
            current_app.send_task(task.name, args=list(args), **options)
        except Exception as exc:
            if on_error is None:
                raise
            log.error("%s%s could not be queued: %s", task.name, list(args), exc)
            on_error(f"the job queue (broker) could not be reached: {type(exc).__name__}: {exc}")

    transaction.on_commit(publish)


def contract_task(task: Task, **options) -> Callable[[Callable], object]:
    """Register the decorated function as the worker of `task` (a Celery shared task of that name).

    Its positional parameters must be the contract's arguments (after `self` for `bind=True`)."""

    def register(function: Callable) -> object:
        params = [
            p.name
            for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if options.get("bind"):
            params = params[1:]
        if tuple(params) != task.args:
            raise TypeError(f"{task.name}: the worker takes {tuple(params)}, the contract says {task.args}")
        return shared_task(name=task.name, **options)(function)

    return register
