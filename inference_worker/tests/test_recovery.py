"""Recovery of jobs whose worker died: stale heartbeats are queued again, fresh ones are left alone."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation_app.lib import tasks
from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case, make_target
from inference_worker import recovery


@pytest.fixture
def sent(monkeypatch, transactional_db):
    """Tasks published (recovery runs outside a transaction, as in a worker, so sends leave at once)."""
    from annotation_app.celery import app

    calls = []
    monkeypatch.setattr(
        app,
        "send_task",
        lambda name, args=None, queue=None, task_id=None, **kw: calls.append((name, list(args or []), queue, task_id)),
    )
    return calls


@pytest.fixture
def target(project, annotator, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return make_target(make_case(project), annotator)


def running_job(target, key: str, beat_age_s: float) -> PropagationJob:
    beat = timezone.now() - timedelta(seconds=beat_age_s)
    return PropagationJob.objects.create(
        target=target, idempotency_key=key, status=JobStatus.RUNNING, worker="w1@host#1", heartbeat_at=beat,
        started_at=beat, celery_task_id="old-task", queue="gpu.w1@host",
    )  # fmt: skip


def test_a_job_with_a_stale_heartbeat_is_queued_again_on_the_shared_queue(target, sent):
    stale = running_job(target, "stale", beat_age_s=120)
    fresh = running_job(target, "fresh", beat_age_s=1)
    assert recovery.requeue_stale_jobs(stale_after_s=60) == [stale.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.worker, stale.queue) == (JobStatus.QUEUED, "", "gpu")
    assert stale.celery_task_id != "old-task"
    assert sent == [(tasks.PROPAGATE.name, [stale.pk], "gpu", stale.celery_task_id)]
    assert fresh.status == JobStatus.RUNNING and fresh.worker == "w1@host#1"


def test_a_requeued_job_is_not_requeued_twice(target, sent):
    running_job(target, "stale", beat_age_s=120)
    assert len(recovery.requeue_stale_jobs(stale_after_s=60)) == 1
    assert recovery.requeue_stale_jobs(stale_after_s=60) == []
    assert len(sent) == 1


def test_a_job_waiting_on_a_dead_workers_own_queue_moves_to_the_shared_queue(target, sent, monkeypatch):
    job = PropagationJob.objects.create(target=target, idempotency_key="waiting", queue="gpu.gone@host")
    PropagationJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=300))
    monkeypatch.setattr(recovery.realtime, "worker_alive", lambda node: node != "gone@host")
    assert recovery.requeue_stale_jobs(stale_after_s=60) == [job.pk]
    job.refresh_from_db()
    assert job.queue == "gpu" and job.status == JobStatus.QUEUED
    assert sent[0][2] == "gpu"


def test_the_management_command_requeues_and_says_how_many(target, sent, capsys):
    stale = running_job(target, "stale", beat_age_s=120)
    call_command("requeue_stale_jobs", "--stale-after", "60")
    assert capsys.readouterr().out.strip() == f"requeued 1 job(s): {stale.pk}"


def test_a_job_that_lost_its_worker_three_times_fails_instead_of_looping(target, sent):
    job = running_job(target, "cursed", beat_age_s=120)
    PropagationJob.objects.filter(pk=job.pk).update(attempts=3)
    assert recovery.requeue_stale_jobs(stale_after_s=60) == []
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and sent == []
    assert job.error == "the worker was lost 3 times while running this job (last: w1@host#1); giving up"
