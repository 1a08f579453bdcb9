"""The task contract (annotation_app/lib/tasks.py) against what the workers register and how Celery routes.

Every task the web process can send is named in the contract; a worker registers each contract name (and
no other) with the contract's arguments, the Celery app routes each to the contract's queue, and no code
outside the contract publishes a task by a name of its own.
"""

import ast
import inspect
from pathlib import Path

import pytest

import inference_worker.tasks  # noqa: F401  (registers the worker tasks, as `celery -A annotation_app worker` does)
from annotation_app.celery import app
from annotation_app.lib import tasks as contract

REPO = Path(__file__).resolve().parent.parent


def registered_names() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


@pytest.mark.parametrize("task", contract.ALL, ids=lambda t: t.name)
def test_every_task_the_web_sends_is_registered_by_a_worker_with_the_contracts_arguments(task):
    assert task.name in registered_names(), f"no worker registers {task.name}"
    worker = app.tasks[task.name]
    params = [
        p.name
        for p in inspect.signature(worker.run).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert tuple(params) == task.args


def test_workers_register_no_task_the_contract_does_not_name():
    unknown = sorted(registered_names() - set(contract.BY_NAME))
    assert unknown == [], f"add these to annotation_app/lib/tasks.py: {unknown}"


@pytest.mark.parametrize("task", contract.ALL, ids=lambda t: t.name)
def test_each_task_is_routed_to_the_contracts_queue(task):
    assert app.amqp.router.route({}, task.name)["queue"].name == task.queue


def test_the_app_declares_exactly_the_contracts_queues():
    assert sorted(q.name for q in app.conf.task_queues) == sorted(contract.QUEUES)


def _calls_to(name: str, tree: ast.AST) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name
    ]


def test_only_the_contract_publishes_tasks_and_no_task_name_is_spelled_elsewhere():
    offenders = []
    for package in ("annotation_app", "inference_worker"):
        for path in (REPO / package).rglob("*.py"):
            if "tests" in path.parts or path == REPO / "annotation_app/lib/tasks.py":
                continue
            source = path.read_text()
            lines = _calls_to("send_task", ast.parse(source))
            lines += [n for n, line in enumerate(source.splitlines(), 1) if '"inference_worker.tasks.' in line]
            offenders += [f"{path.relative_to(REPO)}:{line}" for line in lines]
    assert offenders == []


def test_send_refuses_the_wrong_number_of_arguments():
    with pytest.raises(TypeError, match="takes \\(job_id\\)"):
        contract.send(contract.PROPAGATE, 1, 2)


@pytest.mark.django_db
def test_send_publishes_after_commit_and_reports_an_unreachable_broker(monkeypatch, django_capture_on_commit_callbacks):
    sent, errors = [], []

    def broken(name, **kwargs):
        sent.append((name, kwargs))
        raise ConnectionRefusedError("Error 111")

    monkeypatch.setattr(app, "send_task", broken)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        contract.send(contract.INGEST, 7, on_error=errors.append)
    assert sent == [] and len(callbacks) == 1  # nothing leaves before the commit
    callbacks[0]()
    assert sent == [("inference_worker.tasks.ingest.ingest_upload", {"args": [7], "queue": "default"})]
    assert errors == ["the job queue (broker) could not be reached: ConnectionRefusedError: Error 111"]


def test_a_worker_function_whose_arguments_differ_from_the_contract_is_refused():
    with pytest.raises(TypeError, match="the contract says"):

        @contract.contract_task(contract.PROPAGATE)
        def propagate_target(target_id: int) -> None:  # the contract's argument is job_id
            raise AssertionError("never registered")


@pytest.mark.slow
def test_a_real_worker_on_every_queue_registers_every_task_the_web_sends(start_celery_worker):
    worker = start_celery_worker(queues=contract.QUEUES, env={"MEDSAM2_DEVICE": "cpu"}, name="contract")
    registered = app.control.inspect([worker.name], timeout=10).registered() or {}
    missing = sorted(set(contract.BY_NAME) - set(registered.get(worker.name, [])))
    assert missing == [], f"no worker registers {missing}"
