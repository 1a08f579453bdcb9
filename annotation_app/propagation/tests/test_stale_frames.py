"""A new job's live frames never include frames left in Redis by an earlier job with the same id."""

from annotation_app.annotations.models import Prompt, PromptKind
from annotation_app.propagation import realtime
from annotation_app.propagation.tests.test_api import post_propagate, sent, target  # noqa: F401 (fixtures)


def test_a_new_job_starts_with_no_frames_even_when_its_id_has_stale_ones(
    target, annotator, client_for, sent, django_capture_on_commit_callbacks  # noqa: F811
):
    client = client_for(annotator)
    first = post_propagate(client, target, capture=django_capture_on_commit_callbacks).json()
    # what a previous database's job with the next id left behind (same Redis, ids restarted)
    stale_id = first["id"] + 1
    realtime.clear_frames(stale_id)
    realtime.publish_frame(stale_id, 7, [10, 5, 4081], 3.5, 0.9)
    realtime.publish_frame(stale_id, 8, [4096], 1.0, 0.5)
    assert realtime.read_frames_count(stale_id) == 2
    Prompt.objects.create(target=target, frame=3, kind=PromptKind.POINT, payload={"points": [[5, 5]], "labels": [1]})
    second = post_propagate(client, target, capture=django_capture_on_commit_callbacks).json()
    assert second["id"] == stale_id, "the sequence handed out the next id"
    shown = client.get(f"/api/propagation-jobs/{second['id']}/frames/?since=0").json()
    assert (shown["cursor"], shown["frames"]) == (0, {})
    realtime.clear_frames(stale_id)
