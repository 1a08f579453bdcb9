"""Stored timings through the API: recomputed when late events, revisions or reviews arrive;
duplicates sent twice count once; provenance per slice; Dice and HD95 against the first proposal."""

import csv
import io
import uuid

import pytest

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.propagation.models import JobKind
from annotation_app.timing.models import TargetTiming
from annotation_app.timing.tests.conftest import (
    EDITED,
    PROPOSAL,
    add_event,
    add_job,
    annotate_with_model,
    at,
    mask,
)


@pytest.fixture
def lesion(ct_case, project, annotator):
    return Target.objects.create(case=ct_case, label="lesion", created_by=annotator)


def timing_of(client, target) -> dict:
    response = client.get(f"/api/target-timings/{target.pk}/")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_late_event_is_counted_on_the_next_read(lesion, annotator, reviewer, client_for):
    add_event(lesion, annotator, "target_opened", 0)
    add_event(lesion, annotator, "edit_stroke", 40)
    client = client_for(reviewer)
    assert timing_of(client, lesion)["time_s"] == 0.0  # one 40 s gap: over the 30 s threshold
    add_event(lesion, annotator, "edit_stroke", 20, received=3600)  # queued offline, sent an hour later
    again = timing_of(client, lesion)
    assert (again["time_s"], again["correcting_s"], again["n_strokes"]) == (40.0, 40.0, 2)


def test_events_sent_twice_through_the_api_count_once(lesion, annotator, reviewer, client_for):
    batch = [
        {"client_event_id": str(uuid.uuid4()), "kind": kind, "client_ts": at(t).isoformat(), "target": lesion.pk}
        for kind, t in (("target_opened", 0), ("edit_stroke", 10), ("edit_stroke", 25))
    ]
    sender = client_for(annotator)
    assert sender.post("/api/events/", batch, format="json").json() == {"created": 3, "duplicates": 0}
    assert sender.post("/api/events/", batch, format="json").json() == {"created": 0, "duplicates": 3}
    row = timing_of(client_for(reviewer), lesion)
    assert (row["n_events"], row["n_strokes"]) == (3, 2)


def test_the_first_proposal_is_compared_with_the_final_mask(lesion, annotator, reviewer, client_for):
    case = lesion.case
    key_only = MaskRevision.append(lesion, mask(case, {1: (2, 4, 2, 4)}), "model")
    key_job = add_job(lesion, annotator, 0, 1, revision=key_only)
    key_job.__class__.objects.filter(pk=key_job.pk).update(kind=JobKind.KEY_FRAME)
    proposal = MaskRevision.append(lesion, mask(case, PROPOSAL), "model")
    add_job(lesion, annotator, 1, 5, revision=proposal)
    MaskRevision.append(lesion, mask(case, EDITED), "human", author=annotator)
    later = MaskRevision.append(lesion, mask(case, EDITED), "model")  # a later proposal is not the first
    add_job(lesion, annotator, 5, 9, revision=later)
    row = timing_of(client_for(reviewer), lesion)
    # the key-frame-only answer is not the proposal; the first full propagation is
    assert row["first_proposal"] == proposal.pk and row["final_revision"] == later.pk
    assert (row["voxels_changed"], row["dice"]) == (4, 0.8)
    # frame 2 grew by two columns (x 4-5): the farthest surface voxels are 2 px (2 mm) apart
    assert 0.0 < row["hd95_mm"] <= 2.0
    assert (row["n_frames"], row["n_corrected_frames"], row["edit_fraction"]) == (2, 1, 0.5)
    assert row["model_name"] == "test-model"
    assert row["slices"]["1"] == {
        "source": "model", "user": None, "model": "test-model", "touched_by": [], "in_final": True,
    }  # fmt: skip
    # frame 2: changed by the person, then written again by the later proposal (same content)
    assert row["slices"]["2"]["touched_by"] == [annotator.pk]


def test_an_unchanged_proposal_scores_dice_one_and_hd95_zero(lesion, annotator, reviewer, client_for):
    annotate_with_model(lesion, annotator, 0, 60, final=PROPOSAL)
    row = timing_of(client_for(reviewer), lesion)
    assert (row["dice"], row["hd95_mm"], row["voxels_changed"], row["edit_fraction"]) == (1.0, 0.0, 0, 0.0)
    assert (row["prompting_s"], row["waiting_s"], row["correcting_s"], row["time_s"]) == (6.0, 10.0, 44.0, 60.0)
    assert row["submitted_by_username"] == "annotator"


def test_a_review_is_counted_once_it_happens(lesion, annotator, reviewer, client_for):
    annotate_with_model(lesion, annotator, 0, 60)
    client = client_for(reviewer)
    assert timing_of(client, lesion)["status"] == "submitted"
    add_event(lesion, reviewer, "target_opened", 200)
    add_event(lesion, reviewer, "review_accept", 225)
    Target.objects.get(pk=lesion.pk).accept(reviewer)
    row = timing_of(client, lesion)
    assert (row["status"], row["reviewing_s"], row["time_s"]) == ("accepted", 25.0, 60.0)
    assert row["per_user"][str(reviewer.pk)]["reviewing"] == 25.0


def test_video_lesions_report_time_per_frame(project, annotator, reviewer, client_for):
    from annotation_app.imaging.models import Case, CaseStatus

    echo = Case.objects.create(
        project=project, name="echo", modality="US", kind="video", shape=[4, 8, 8], spacing=[1.0, 0.5, 0.5],
        status=CaseStatus.READY,
    )  # fmt: skip
    target = Target.objects.create(case=echo, label="lesion", created_by=annotator)
    annotate_with_model(target, annotator, 0, 60)  # two frames with mask
    row = timing_of(client_for(reviewer), target)
    assert (row["case_kind"], row["n_frames"], row["per_frame_s"]) == ("video", 2, 30.0)


def test_the_list_sorts_and_filters_for_the_review_queue(ct_case, annotator, reviewer, client_for):
    slow = Target.objects.create(case=ct_case, label="lesion", created_by=annotator)
    fast = Target.objects.create(case=ct_case, label="lesion", created_by=annotator)
    annotate_with_model(slow, annotator, 0, 90)
    annotate_with_model(fast, annotator, 100_000, 40, final=PROPOSAL)
    Target.objects.create(case=ct_case, label="lesion", created_by=annotator)  # a draft
    client = client_for(reviewer)
    rows = client.get("/api/target-timings/", {"status": "submitted", "ordering": "-time_s"}).json()["results"]
    assert [(r["target"], r["time_s"], r["dice"]) for r in rows] == [(slow.pk, 90.0, 0.8), (fast.pk, 40.0, 1.0)]
    by_dice = client.get("/api/target-timings/", {"status": "submitted", "ordering": "dice"}).json()["results"]
    assert [r["target"] for r in by_dice] == [slow.pk, fast.pk]


def test_annotators_see_no_timings(lesion, annotator, client_for):
    add_event(lesion, annotator, "target_opened", 0)
    client = client_for(annotator)
    assert client.get("/api/target-timings/").json()["results"] == []
    assert client.get(f"/api/target-timings/{lesion.pk}/").status_code == 404
    assert not TargetTiming.objects.exists()  # nothing computed for someone who may not see it


def test_managers_export_every_row_as_csv(lesion, annotator, manager, reviewer, client_for, project):
    annotate_with_model(lesion, annotator, 0, 60)
    response = client_for(manager).get("/api/target-timings/export/", {"project": project.pk, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert (row["target"], row["time_s"], row["waiting_s"], row["dice"]) == (str(lesion.pk), "60.0", "10.0", "0.8")
    as_json = client_for(manager).get("/api/target-timings/export/", {"project": project.pk}).json()
    assert [r["target"] for r in as_json] == [lesion.pk]
    assert client_for(reviewer).get("/api/target-timings/export/", {"project": project.pk}).status_code == 403
