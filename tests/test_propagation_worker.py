"""Propagation jobs run by REAL Celery worker processes on Redis against the test Postgres database.

The model is a random-weight `test_tiny` checkpoint made here and registered as the project's active
ModelVersion; cases are small synthetic volumes. Assertions are about the job machinery (one revision,
progress, cancel, crash recovery, duplicates, errors, parallelism, feature reuse), not mask quality.
"""

import json
import os
import threading
import time

import pytest

from annotation_app.annotations.models import MaskRevision, Prompt, PromptKind, TargetStatus
from annotation_app.lib import tasks as contract
from annotation_app.propagation import realtime, services
from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case, make_target, tiny_model_version

pytestmark = pytest.mark.slow

WORKER_ENV = {
    "MEDSAM2_DEVICE": "cpu",
    "OMP_NUM_THREADS": "1",
    "PROPAGATION_HEARTBEAT_S": "0.3",
    "PROPAGATION_STALE_AFTER_S": "2",
    "PROPAGATION_RECOVERY_INTERVAL_S": "1",
}


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def finished(job: PropagationJob, timeout: float = 90.0, worker=None) -> PropagationJob:
    def done():
        job.refresh_from_db()
        return job.is_finished

    try:
        wait_for(done, timeout, what=f"job {job.pk} to finish (status {job.status})")
    except AssertionError:
        if worker is not None:
            print(worker.log(8000))
        raise
    return job


def read_events(client, job_id: int, out: list) -> None:
    """Consume GET /events/ (server-sent events) into [(event, data)] until the stream ends."""
    from django.db import connection

    try:
        response = client.get(f"/api/propagation-jobs/{job_id}/events/", HTTP_ACCEPT="text/event-stream")
        buffer = ""
        for chunk in response.streaming_content:
            buffer += chunk.decode()
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
                if "event" in fields:
                    out.append((fields["event"], json.loads(fields["data"])))
    finally:
        connection.close()


@pytest.fixture
def scene(project, annotator, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    version = tiny_model_version(project, tmp_path)
    case = make_case(project)
    target = make_target(case, annotator)
    return {"version": version, "case": case, "target": target}


def propagate(client_for, user, target, **body):
    response = client_for(user).post(f"/api/targets/{target.pk}/propagate/", body, format="json")
    assert response.status_code == 202, response.content
    return PropagationJob.objects.get(pk=response.json()["id"])


def test_a_worker_fixture_runs_the_health_task_and_kill9_ends_it(celery_worker):
    from annotation_app.celery import app

    result = app.send_task(contract.PING.name, args=["hello"], queue=contract.PING.queue)
    reply = result.get(timeout=30)
    assert reply["echo"] == "hello"
    assert reply["pid"] != os.getpid()
    celery_worker.kill9()
    assert not celery_worker.is_alive()


def test_a_job_reports_progress_publishes_the_key_frame_first_and_writes_one_revision(
    start_celery_worker, scene, annotator, client_for
):
    worker = start_celery_worker(queues=("gpu",), env=WORKER_ENV)
    target = scene["target"]
    job = propagate(client_for, annotator, target)
    finished(job, worker=worker)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.frames_done, job.frames_total, job.progress) == (12, 12, 1.0)
    assert job.device == "cpu" and job.model_name == "tiny" and job.model_version_id == scene["version"].pk
    assert job.attempts == 1 and job.worker.startswith(worker.name)

    revisions = MaskRevision.objects.filter(target=target)
    assert revisions.count() == 1
    revision = revisions.get()
    assert job.result_revision_id == revision.pk
    assert (revision.source, revision.job_key, revision.model_version_id) == (
        "model",
        job.idempotency_key,
        scene["version"].pk,
    )
    assert sorted(int(f) for f in revision.frame_scores) == list(range(12))
    assert set(revision.frame_scores["6"]) == {"object_score", "iou", "suspect"}  # suspect: reasons, [] = none
    assert all(isinstance(revision.frame_scores[str(f)]["suspect"], list) for f in range(12))
    target.refresh_from_db()
    assert target.status == TargetStatus.PROPOSED

    # The partial stream starts with the key frame and, read to the end, matches the stored revision.
    body = client_for(annotator).get(f"/api/propagation-jobs/{job.pk}/frames/?since=0").json()
    assert body["finished"] is True and body["cursor"] >= 12 and (body["height"], body["width"]) == (64, 64)
    first, cursor = realtime.read_frames(job.pk, 0)
    assert list(realtime.read_frames(job.pk, 0)[0])[0] == "6" and cursor == body["cursor"]
    from annotation_app.lib.maskcodec import encode_slice_rle

    stored = revision.mask()
    assert all(first[str(f)]["rle"] == encode_slice_rle(stored[f]) for f in range(12))
    for key in ("load_s", "state_s", "first_frame_s", "propagate_s", "total_s"):
        assert job.timings[key] >= 0

    # The workers endpoint sees the worker, its own queue and its device.
    listing = client_for(annotator).get("/api/workers/").json()
    mine = [w for w in listing["workers"] if w["name"] == worker.name]
    assert mine and mine[0]["device"] == "cpu"
    assert {"gpu", realtime.worker_queue(worker.name)} <= set(mine[0]["queues"])
    assert listing["queues"]["gpu"] == 0

    # The same case again: the features come from the worker's cache, via the worker's own queue.
    Prompt.objects.create(target=target, frame=4, kind=PromptKind.POINT, payload={"points": [[32, 32]], "labels": [1]})
    again = propagate(client_for, annotator, target)
    assert again.queue == realtime.worker_queue(worker.name)
    finished(again, worker=worker)
    assert again.status == JobStatus.SUCCEEDED, again.error
    assert again.timings["features_cached"] == 1.0 and job.timings["features_cached"] == 0.0
    assert MaskRevision.objects.filter(target=target).count() == 2


def test_cancelling_mid_run_stops_the_job_without_a_revision(start_celery_worker, scene, annotator, client_for):
    worker = start_celery_worker(queues=("gpu",), env={**WORKER_ENV, "MEDSAM2_TEST_FRAME_DELAY_S": "0.4"})
    target = scene["target"]
    job = propagate(client_for, annotator, target)
    events: list[tuple[str, dict]] = []
    listener = threading.Thread(target=read_events, args=(client_for(annotator), job.pk, events))
    listener.start()
    wait_for(lambda: PropagationJob.objects.get(pk=job.pk).frames_done >= 3, what="three frames")
    response = client_for(annotator).post(f"/api/propagation-jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    finished(job, worker=worker)
    assert job.status == JobStatus.CANCELLED
    assert 3 <= job.frames_done < 12
    assert not MaskRevision.objects.filter(target=target).exists()

    # The event stream followed the job live and ended with it.
    listener.join(timeout=30)
    assert not listener.is_alive()
    names = [name for name, _ in events]
    assert names[-1] == "end" and events[-1][1]["status"] == "cancelled"
    running = [data["frames_done"] for name, data in events if name == "update" and data["status"] == "running"]
    assert len(running) >= 3 and running == sorted(running)


def test_a_job_survives_kill9_of_its_worker_and_writes_exactly_one_revision(
    start_celery_worker, scene, annotator, client_for
):
    env = {**WORKER_ENV, "MEDSAM2_TEST_FRAME_DELAY_S": "0.4"}
    first = start_celery_worker(queues=("gpu",), env=env, name="doomed")
    target = scene["target"]
    job = propagate(client_for, annotator, target)
    wait_for(lambda: PropagationJob.objects.get(pk=job.pk).frames_done >= 3, what="three frames")
    first.kill9()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.frames_done < 12

    second = start_celery_worker(queues=("gpu",), env=env, name="rescuer")
    finished(job, timeout=120, worker=second)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2 and job.worker.startswith(second.name)
    assert MaskRevision.objects.filter(target=target).count() == 1
    assert MaskRevision.objects.get(target=target).job_key == job.idempotency_key


def test_the_same_job_delivered_twice_writes_one_revision(start_celery_worker, scene, annotator, client_for):
    worker = start_celery_worker(
        queues=("gpu",), concurrency=2, env={**WORKER_ENV, "MEDSAM2_TEST_FRAME_DELAY_S": "0.1"}
    )
    target = scene["target"]
    job = propagate(client_for, annotator, target)
    services.send_job(job)  # a second delivery of the same job, as after a broker redelivery
    finished(job, worker=worker)
    time.sleep(1.0)  # let the second delivery finish its (refused) claim
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 1
    assert MaskRevision.objects.filter(target=target).count() == 1


def test_a_missing_checkpoint_fails_the_job_with_a_clear_error(start_celery_worker, scene, annotator, client_for):
    from django.conf import settings
    from django.core.files.storage import default_storage

    version = scene["version"]
    default_storage.delete(version.checkpoint_key)
    worker = start_celery_worker(queues=("gpu",), env=WORKER_ENV)
    job = finished(propagate(client_for, annotator, scene["target"]), worker=worker)
    assert job.status == JobStatus.FAILED
    assert job.error == f"model checkpoint not found in storage: {version.checkpoint_key} (model tiny)"
    assert str(settings.MEDIA_ROOT) not in job.error
    assert not MaskRevision.objects.exists()


def test_a_missing_image_fails_the_job_with_a_clear_error(start_celery_worker, scene, annotator, client_for):
    case = scene["case"]
    case.image_key = f"cases/{case.project_id}/{case.pk}/gone.npy"
    case.save(update_fields=["image_key"])
    worker = start_celery_worker(queues=("gpu",), env=WORKER_ENV)
    job = finished(propagate(client_for, annotator, scene["target"]), worker=worker)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith(f"image missing: the image of case {case.pk} is missing from storage")
    assert not MaskRevision.objects.exists()


def test_two_cases_propagate_in_parallel_on_a_two_process_worker(
    start_celery_worker, scene, project, annotator, client_for
):
    worker = start_celery_worker(
        queues=("gpu",), concurrency=2, env={**WORKER_ENV, "MEDSAM2_TEST_FRAME_DELAY_S": "0.2"}
    )
    other = make_target(make_case(project, name="second"), annotator)
    jobs = [propagate(client_for, annotator, scene["target"]), propagate(client_for, annotator, other)]
    for job in jobs:
        finished(job, worker=worker)
        assert job.status == JobStatus.SUCCEEDED, job.error
    a, b = jobs
    assert a.started_at < b.finished_at and b.started_at < a.finished_at, "the jobs did not overlap"
    assert len({a.worker, b.worker}) == 2
    assert MaskRevision.objects.filter(job_key__in=[a.idempotency_key, b.idempotency_key]).count() == 2
