"""A training run in this process (with real worker processes: tests/test_training_worker.py): cancelling
a running run, and a run without held-out targets, whose candidate waits for an admin."""

import threading
import time

import pytest
import torch
from django.db import connection

from annotation_app.rounds import lifecycle
from annotation_app.rounds.models import ModelVersion, Round, TrainingRun
from annotation_app.rounds.tests.factories import accepted_target, echo_case, register_bootstrap
from inference_worker.training import run_training

pytestmark = pytest.mark.slow

TINY = {"steps": 12, "num_frames": 2, "lr_other": 1e-3, "checkpoint_every": 4, "validate_every": 0}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def sent(monkeypatch):
    """Tasks are recorded, not published: this process runs the run itself."""
    from annotation_app.celery import app

    calls = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kw: calls.append((name, args)))
    return calls


@pytest.fixture
def closed_round(project, owner, settings, tmp_path, one_thread, sent):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"
    settings.TRAINING_PROGRESS_S = 0
    register_bootstrap(project)
    round_ = lifecycle.open_round(project)
    case, mask = echo_case(project, seed=1, frames=8, size=48)
    accepted_target(case, round_, mask, owner)
    return lifecycle.close_round(round_)


@pytest.mark.django_db
def test_a_run_without_held_out_targets_registers_a_candidate_that_waits_for_an_admin(closed_round, owner):
    run = lifecycle.start_training(closed_round, owner, TINY)
    assert run_training(run.pk, "test#1")["status"] == "succeeded"
    version = ModelVersion.objects.get(training_run=run)
    assert version.status == "candidate" and version.metrics["gate"]["passed"] is None
    assert version.metrics["gate"]["reason"].startswith("no held-out target to compare on")
    assert ModelVersion.active_for(closed_round.project_id).name == "bootstrap"
    assert run_training(run.pk, "test#2") == {"run": run.pk, "skipped": "already succeeded"}


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_run_stops_it_before_its_next_step_and_keeps_its_checkpoint(
    closed_round, owner, client_for
):
    run = lifecycle.start_training(closed_round, owner, {**TINY, "steps": 400})
    outcome = {}

    def work():
        try:
            outcome.update(run_training(run.pk, "test#1"))
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 120
    while TrainingRun.objects.get(pk=run.pk).step < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client_for(owner).post(f"/api/training-runs/{run.pk}/cancel/").json()["cancel_requested"] is True
    thread.join(timeout=120)
    run.refresh_from_db()
    assert outcome["status"] == "cancelled" and run.status == "cancelled" and 5 <= run.step < 400
    assert run.checkpoint_key.endswith(f"runs/{run.pk}/checkpoint.pt") and "cancelled at step" in run.log
    assert not ModelVersion.objects.filter(training_run=run).exists()
    assert Round.objects.get(pk=closed_round.pk).status == "closed"  # ready for another run
