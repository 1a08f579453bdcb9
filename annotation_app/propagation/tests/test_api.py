"""The propagation REST API without a worker: the task is recorded at the broker boundary (send_task)."""

import json
import os
import subprocess
import sys

import pytest

from annotation_app.annotations.models import Prompt, PromptKind, TargetStatus
from annotation_app.lib import tasks
from annotation_app.propagation import realtime
from annotation_app.propagation.models import JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case, make_target


class SentList(list):
    priorities: list


@pytest.fixture
def sent(monkeypatch):
    """Messages the web process publishes: [(task name, args, queue, task_id)]."""
    from annotation_app.celery import app

    calls = SentList()

    def fake_send_task(name, args=None, queue=None, task_id=None, priority=None, **kwargs):
        calls.append((name, list(args or []), queue, task_id))
        priorities.append(priority)

    priorities = []
    calls.priorities = priorities

    monkeypatch.setattr(app, "send_task", fake_send_task)
    monkeypatch.setattr(app.control, "revoke", lambda *a, **k: None)
    return calls


@pytest.fixture
def target(project, annotator, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return make_target(make_case(project), annotator)


def post_propagate(client, target, body=None, capture=None):
    with capture(execute=True):
        return client.post(f"/api/targets/{target.pk}/propagate/", body or {}, format="json")


def test_propagate_answers_202_and_sends_the_task_by_name_after_commit(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks
):
    response = post_propagate(client_for(annotator), target, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == "propagate" and body["direction"] == "both"
    assert body["target"] == target.pk and body["frames_total"] == 0 and body["result_revision"] is None
    job = PropagationJob.objects.get(pk=body["id"])
    assert sent == [(tasks.PROPAGATE.name, [job.pk], "gpu", job.celery_task_id)]


def test_an_unreachable_broker_fails_the_job_instead_of_leaving_it_queued(
    target, annotator, client_for, monkeypatch, django_capture_on_commit_callbacks
):
    from annotation_app.celery import app

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(app, "send_task", broken)
    response = post_propagate(client_for(annotator), target, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 202
    job = PropagationJob.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.FAILED
    assert job.error == (
        "the job queue (broker) could not be reached: ConnectionRefusedError: Error 111 connecting to 127.0.0.1:6379"
    )


def test_the_same_request_while_the_job_is_queued_is_a_409(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks
):
    client = client_for(annotator)
    assert post_propagate(client, target, capture=django_capture_on_commit_callbacks).status_code == 202
    again = post_propagate(client, target, capture=django_capture_on_commit_callbacks)
    assert again.status_code == 409
    assert "already queued" in again.json()["detail"]
    assert len(sent) == 1


def test_a_new_prompt_supersedes_the_queued_job(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks
):
    client = client_for(annotator)
    first = post_propagate(client, target, capture=django_capture_on_commit_callbacks).json()
    Prompt.objects.create(target=target, frame=3, kind=PromptKind.POINT, payload={"points": [[5, 5]], "labels": [0]})
    second = post_propagate(client, target, capture=django_capture_on_commit_callbacks)
    assert second.status_code == 202
    old = PropagationJob.objects.get(pk=first["id"])
    assert (old.status, old.cancel_requested) == (JobStatus.CANCELLED, True)
    assert len(sent) == 2


def test_a_key_frame_job_and_a_propagation_job_may_run_side_by_side(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks
):
    client = client_for(annotator)
    quick = post_propagate(client, target, {"kind": "key_frame"}, capture=django_capture_on_commit_callbacks)
    full = post_propagate(client, target, capture=django_capture_on_commit_callbacks)
    assert (quick.status_code, full.status_code) == (202, 202)
    assert PropagationJob.objects.filter(status=JobStatus.QUEUED).count() == 2


def test_key_frame_jobs_are_sent_ahead_of_queued_propagations(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks
):
    client = client_for(annotator)
    post_propagate(client, target, capture=django_capture_on_commit_callbacks)
    post_propagate(client, target, {"kind": "key_frame"}, capture=django_capture_on_commit_callbacks)
    assert sent.priorities == [6, 0]  # Redis transport: 0 is served first


def test_queue_depths_count_every_priority_list(monkeypatch):
    import uuid

    import redis

    client = redis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/0")
    monkeypatch.setattr(realtime, "redis_client", lambda: client)
    name = f"pytest-depth-{uuid.uuid4().hex[:8]}"
    client.delete(name, f"{name}\x06\x166")
    client.rpush(name, "a")
    client.rpush(f"{name}\x06\x166", "b", "c")
    try:
        assert realtime.queue_lengths([name]) == {name: 3}
    finally:
        client.delete(name, f"{name}\x06\x166")


def test_propagate_without_prompts_is_a_409(target, annotator, client_for, sent, django_capture_on_commit_callbacks):
    Prompt.objects.filter(target=target).update(withdrawn=True)
    response = post_propagate(client_for(annotator), target, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 409
    assert response.json()["detail"].startswith("the target has no prompts")
    assert sent == []


def test_a_submitted_target_cannot_be_propagated(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks
):
    type(target).objects.filter(pk=target.pk).update(status=TargetStatus.SUBMITTED)
    response = post_propagate(client_for(annotator), target, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 409
    assert "submitted" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"frame_range": [5, 2]}, "frame_range"),
        ({"frame_range": [0, 12]}, "frame_range"),
        ({"direction": "sideways"}, "direction"),
        ({"kind": "everything"}, "kind"),
        ({"speed": "fast"}, "speed"),
    ],
)
def test_a_bad_propagate_body_is_a_400_naming_the_field(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks, body, field
):
    response = post_propagate(client_for(annotator), target, body, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert sent == []


def test_an_outsider_sees_neither_the_target_nor_its_jobs(
    target, annotator, outsider, client_for, sent, django_capture_on_commit_callbacks
):
    job_id = post_propagate(client_for(annotator), target, capture=django_capture_on_commit_callbacks).json()["id"]
    stranger = client_for(outsider)
    assert stranger.post(f"/api/targets/{target.pk}/propagate/", {}, format="json").status_code == 404
    assert stranger.get(f"/api/propagation-jobs/{job_id}/").status_code == 404
    assert stranger.post(f"/api/propagation-jobs/{job_id}/cancel/").status_code == 404
    assert stranger.get("/api/propagation-jobs/").json()["count"] == 0


def test_anonymous_callers_are_refused(target, client_for):
    assert client_for(None).post(f"/api/targets/{target.pk}/propagate/", {}, format="json").status_code in (
        401,
        403,
    )


def test_cancelling_a_queued_job_cancels_it_at_once_and_twice_is_a_409(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks
):
    client = client_for(annotator)
    job_id = post_propagate(client, target, capture=django_capture_on_commit_callbacks).json()["id"]
    response = client.post(f"/api/propagation-jobs/{job_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert client.post(f"/api/propagation-jobs/{job_id}/cancel/").status_code == 409


def test_jobs_cannot_be_created_or_changed_through_the_collection(target, annotator, client_for):
    client = client_for(annotator)
    assert client.post("/api/propagation-jobs/", {"target": target.pk}, format="json").status_code == 405
    job = PropagationJob.objects.create(target=target, idempotency_key="k1")
    assert client.patch(f"/api/propagation-jobs/{job.pk}/", {"status": "succeeded"}, format="json").status_code == 405
    assert client.delete(f"/api/propagation-jobs/{job.pk}/").status_code == 405


def test_frames_returns_what_was_published_after_the_cursor(target, annotator, client_for):
    job = PropagationJob.objects.create(target=target, idempotency_key="k-frames", status=JobStatus.RUNNING)
    realtime.clear_frames(job.pk)
    realtime.publish_frame(job.pk, 6, [10, 5, 4081], 3.5, 0.9)
    realtime.publish_frame(job.pk, 7, [4096], -2.0, 0.1)
    client = client_for(annotator)
    first = client.get(f"/api/propagation-jobs/{job.pk}/frames/?since=0").json()
    assert first["cursor"] == 2 and first["finished"] is False and (first["height"], first["width"]) == (64, 64)
    assert first["frames"] == {
        "6": {"rle": [10, 5, 4081], "object_score": 3.5, "iou": 0.9},
        "7": {"rle": [4096], "object_score": -2.0, "iou": 0.1},
    }
    realtime.publish_frame(job.pk, 8, [4096], -3.0, 0.0)
    later = client.get(f"/api/propagation-jobs/{job.pk}/frames/?since=2").json()
    assert later["cursor"] == 3 and list(later["frames"]) == ["8"]
    assert client.get(f"/api/propagation-jobs/{job.pk}/frames/?since=-1").status_code == 400
    realtime.clear_frames(job.pk)


def test_the_event_stream_reports_the_job_and_ends_when_it_is_finished(target, annotator, client_for):
    job = PropagationJob.objects.create(
        target=target, idempotency_key="k-sse", status=JobStatus.SUCCEEDED, progress=1.0, frames_done=12
    )
    response = client_for(annotator).get(f"/api/propagation-jobs/{job.pk}/events/", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    text = b"".join(response.streaming_content).decode()
    events = [block for block in text.split("\n\n") if block.startswith("event:")]
    assert [e.split("\n")[0] for e in events] == ["event: update", "event: end"]
    data = json.loads(events[-1].split("\n")[1][len("data: ") :])
    assert (data["id"], data["status"], data["frames_done"], data["progress"]) == (
        job.pk,
        "succeeded",
        12,
        1.0,
    )


def test_workers_lists_queues_for_members_only(project, annotator, client_for, django_user_model):
    body = client_for(annotator).get("/api/workers/").json()
    assert set(body["queues"]) == {"default", "gpu", "training"}
    assert all(isinstance(n, int) for n in body["queues"].values())
    assert isinstance(body["workers"], list)
    loner = django_user_model.objects.create_user(username="loner", password="loner-pw-123")
    assert client_for(loner).get("/api/workers/").status_code == 404


def test_importing_the_web_urls_does_not_import_torch_or_the_model_stack():
    # medsam2's torch-free parts (configs, fine-tuning settings) check requests; the model never loads
    heavy = "('torch', 'medsam2.build', 'medsam2.modeling', 'medsam2.predictor', 'inference_worker')"
    code = (
        "import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'annotation_app.settings'); "
        "django.setup(); import annotation_app.urls, annotation_app.propagation.api.views; "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
