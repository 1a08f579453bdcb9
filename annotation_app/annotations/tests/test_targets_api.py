"""Targets through the API: creation defaults, validation, the review workflow."""

import numpy as np
import pytest

from annotation_app.annotations.models import MaskRevision, Target


@pytest.mark.django_db
def test_a_new_target_joins_the_open_round_and_records_its_author(case, open_round, annotator, client_for):
    response = client_for(annotator).post("/api/targets/", {"case": case.pk, "label": "lesion", "key_frame": 2})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["round"] == open_round.pk
    assert body["created_by"] == annotator.pk
    assert body["status"] == "draft"
    assert body["current_revision"] is None


@pytest.mark.django_db
def test_a_target_needs_one_of_the_projects_labels(case, annotator, client_for):
    response = client_for(annotator).post("/api/targets/", {"case": case.pk, "label": "kidney"})
    assert response.status_code == 400
    assert "label" in response.json()["errors"]


@pytest.mark.django_db
def test_a_key_frame_outside_the_case_is_refused(case, annotator, client_for):
    response = client_for(annotator).post("/api/targets/", {"case": case.pk, "label": "lesion", "key_frame": 4})
    assert response.status_code == 400
    assert response.json()["errors"]["key_frame"] == ["key_frame must be in [0, 3]."]


@pytest.mark.django_db
def test_unknown_fields_are_refused_with_their_names(case, annotator, client_for):
    response = client_for(annotator).post(
        "/api/targets/", {"case": case.pk, "label": "lesion", "status": "accepted", "colour": "red"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"colour": ["Unknown field."], "status": ["Unknown field."]}


@pytest.mark.django_db
def test_a_targets_case_cannot_be_changed_afterwards(target, case, annotator, client_for):
    response = client_for(annotator).patch(f"/api/targets/{target.pk}/", {"case": case.pk})
    assert response.status_code == 400
    assert response.json()["errors"]["case"] == ["This field cannot be changed after creation."]


@pytest.mark.django_db
def test_the_list_shows_each_targets_latest_revision(target, case, annotator, client_for):
    mask = np.zeros(case.shape, dtype=bool)
    mask[1, 2:4, 2:5] = True
    MaskRevision.append(target, mask, "model")
    latest = MaskRevision.append(target, mask | np.roll(mask, 1, axis=0), "human", author=annotator)
    rows = client_for(annotator).get(f"/api/targets/?case={case.pk}").json()["results"]
    assert rows[0]["current_revision"] == {"id": latest.pk, "number": 2, "source": "human", "voxel_count": 12}


@pytest.mark.django_db
def test_submit_then_reject_then_resubmit_then_accept(target, case, annotator, reviewer, client_for):
    MaskRevision.append(target, np.ones(case.shape, dtype=bool), "human", author=annotator)
    url = f"/api/targets/{target.pk}"
    assert client_for(annotator).post(f"{url}/submit/").json()["status"] == "submitted"
    rejected = client_for(reviewer).post(f"{url}/reject/", {"comment": "too big"}).json()
    assert (rejected["status"], rejected["review_comment"]) == ("rejected", "too big")
    assert client_for(annotator).post(f"{url}/submit/").json()["status"] == "submitted"
    assert client_for(reviewer).post(f"{url}/accept/").json()["status"] == "accepted"
    target.refresh_from_db()
    assert target.reviewed_by == reviewer


@pytest.mark.django_db
def test_submitting_a_target_without_a_mask_is_a_conflict(target, annotator, client_for):
    response = client_for(annotator).post(f"/api/targets/{target.pk}/submit/")
    assert response.status_code == 409
    assert "mask" in response.json()["detail"]


@pytest.mark.django_db
def test_accepting_a_target_that_was_not_submitted_is_a_conflict(target, reviewer, client_for):
    response = client_for(reviewer).post(f"/api/targets/{target.pk}/accept/", {"comment": "ok"})
    assert response.status_code == 409
    assert Target.objects.get(pk=target.pk).status == "draft"


@pytest.mark.django_db
def test_a_review_with_an_unexpected_field_is_refused(target, reviewer, client_for):
    response = client_for(reviewer).post(f"/api/targets/{target.pk}/accept/", {"score": 5})
    assert response.status_code == 400
    assert response.json()["errors"] == {"score": ["Unknown field."]}


@pytest.mark.django_db
def test_page_size_may_be_raised_to_500_but_no_further(case, open_round, annotator, client_for):
    Target.objects.bulk_create([Target(case=case, label="lesion", round=open_round) for _ in range(60)])
    client = client_for(annotator)
    assert len(client.get("/api/targets/").json()["results"]) == 50
    assert len(client.get("/api/targets/?page_size=60").json()["results"]) == 60
    page = client.get("/api/targets/?page_size=100000").json()
    assert page["count"] == 60 and len(page["results"]) == 60


@pytest.mark.django_db
def test_malformed_json_and_non_object_bodies_are_400s_with_a_reason(case, annotator, client_for):
    client = client_for(annotator)
    broken = client.generic("POST", "/api/targets/", '{"case": 1,', content_type="application/json")
    assert broken.status_code == 400
    assert "JSON parse error" in broken.json()["detail"]
    listed = client.post("/api/targets/", [{"case": case.pk, "label": "lesion"}])
    assert listed.status_code == 400
    assert listed.json()["errors"]["non_field_errors"] == ["Expected a JSON object, got list."]
