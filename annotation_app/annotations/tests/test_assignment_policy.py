"""Assignment and review rules: who edits which target, self-review, reviewer fixes, slice comments."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from annotation_app.annotations.models import MaskRevision, Prompt, Target, TargetStatus
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.lib.roles import Role

SLICE0 = {"0": {"rle": [9, 3, 52]}}  # 3 voxels on frame 0 of an 8x8 frame


@pytest.fixture
def second_annotator(project):
    user = get_user_model().objects.create_user(username="annotator2", password="annotator2-pw-123")
    project.add_member(user, Role.ANNOTATOR)
    return user


@pytest.fixture
def second_reviewer(project):
    user = get_user_model().objects.create_user(username="reviewer2", password="reviewer2-pw-123")
    project.add_member(user, Role.REVIEWER)
    return user


def _mask(case, frame=1):
    mask = np.zeros(case.shape, dtype=bool)
    mask[frame, 2:5, 2:6] = True
    return mask


def _edits(client, target):
    """Every way an annotator changes a target, as (name, status code)."""
    return {
        "prompt": client.post(
            "/api/prompts/", {"target": target.pk, "frame": 1, "kind": "box", "payload": {"box": [1, 1, 5, 6]}}
        ).status_code,
        "mask": client.post("/api/mask-revisions/", {"target": target.pk, "slices": SLICE0}).status_code,
        "patch": client.patch(f"/api/targets/{target.pk}/", {"key_frame": 2}).status_code,
        "propagate": client.post(f"/api/targets/{target.pk}/propagate/", {}).status_code,
    }


@pytest.mark.django_db
def test_an_annotator_cannot_edit_a_target_of_a_case_assigned_to_someone_else(
    case, target, annotator, second_annotator, client_for
):
    case.assignee = second_annotator
    case.save(update_fields=["assignee"])
    codes = _edits(client_for(annotator), target)
    assert codes == {"prompt": 403, "mask": 403, "patch": 403, "propagate": 403}
    assert Prompt.objects.filter(target=target).count() == 0
    assert MaskRevision.objects.filter(target=target).count() == 0
    response = client_for(annotator).post("/api/prompts/", {"target": target.pk, "frame": 1, "kind": "box",
                                                            "payload": {"box": [1, 1, 5, 6]}})  # fmt: skip
    assert "assigned to annotator2" in response.json()["detail"]


@pytest.mark.django_db
def test_the_assignee_edits_the_cases_targets_whoever_created_them(case, target, second_annotator, client_for):
    case.assignee = second_annotator
    case.save(update_fields=["assignee"])
    codes = _edits(client_for(second_annotator), target)
    assert codes == {"prompt": 201, "mask": 201, "patch": 200, "propagate": 202}


@pytest.mark.django_db
def test_on_an_unassigned_case_annotators_edit_only_their_own_targets(target, second_annotator, client_for):
    codes = _edits(client_for(second_annotator), target)
    assert codes == {"prompt": 403, "mask": 403, "patch": 403, "propagate": 403}


@pytest.mark.django_db
def test_the_project_setting_lets_annotators_edit_targets_not_assigned_to_them(
    project, case, target, second_annotator, manager, client_for
):
    response = client_for(manager).patch(
        f"/api/projects/{project.pk}/", {"settings": {"idle_threshold_s": 30, "annotators_edit_unassigned": True}}
    )
    assert response.status_code == 200, response.content
    case.assignee = None
    case.save(update_fields=["assignee"])
    codes = _edits(client_for(second_annotator), target)
    assert codes == {"prompt": 201, "mask": 201, "patch": 200, "propagate": 202}


@pytest.mark.django_db
def test_the_setting_must_be_a_boolean(project, manager, client_for):
    body = {"settings": {"annotators_edit_unassigned": 1}}
    response = client_for(manager).patch(f"/api/projects/{project.pk}/", body)
    assert response.status_code == 400


@pytest.mark.django_db
def test_annotators_start_targets_only_on_their_own_or_unassigned_cases(case, annotator, second_annotator, client_for):
    body = {"case": case.pk, "label": "lesion"}
    assert client_for(annotator).post("/api/targets/", body).status_code == 201
    case.assignee = second_annotator
    case.save(update_fields=["assignee"])
    assert client_for(annotator).post("/api/targets/", body).status_code == 403
    assert client_for(second_annotator).post("/api/targets/", body).status_code == 201
    assert Target.objects.filter(case=case).count() == 2


def _submitted_by(case, user, round_):
    target = Target.objects.create(case=case, label="lesion", round=round_, created_by=user)
    MaskRevision.append(target, _mask(case), "human", author=user)
    target.submit()
    return target


@pytest.mark.django_db
def test_a_reviewer_cannot_accept_or_reject_their_own_work(case, open_round, reviewer, second_reviewer, client_for):
    target = _submitted_by(case, reviewer, open_round)
    own = client_for(reviewer)
    assert own.post(f"/api/targets/{target.pk}/accept/", {}).status_code == 403
    response = own.post(f"/api/targets/{target.pk}/reject/", {"comment": "meh"})
    assert response.status_code == 403
    assert "your own work" in response.json()["detail"]
    target.refresh_from_db()
    assert target.status == TargetStatus.SUBMITTED
    assert client_for(second_reviewer).post(f"/api/targets/{target.pk}/accept/", {}).status_code == 200


@pytest.mark.django_db
def test_a_reviewers_fix_is_a_review_revision_and_keeps_the_target_submitted(
    case, open_round, annotator, reviewer, client_for
):
    target = _submitted_by(case, annotator, open_round)
    response = client_for(reviewer).post(
        "/api/mask-revisions/", {"target": target.pk, "source": "review", "slices": SLICE0, "note": "rim"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "review"
    assert response.json()["number"] == 2
    target.refresh_from_db()
    assert target.status == TargetStatus.SUBMITTED
    # the fix is not the reviewer's "own work": they may still accept
    assert client_for(reviewer).post(f"/api/targets/{target.pk}/accept/", {}).status_code == 200


@pytest.mark.django_db
def test_annotators_cannot_record_review_fixes_and_drafts_take_none(case, open_round, target, annotator, reviewer,
                                                                    client_for):  # fmt: skip
    submitted = _submitted_by(case, annotator, open_round)
    body = {"target": submitted.pk, "source": "review", "slices": SLICE0}
    assert client_for(annotator).post("/api/mask-revisions/", body).status_code == 403
    body["target"] = target.pk  # a draft: the annotator edits it, a reviewer does not "fix" it
    assert client_for(reviewer).post("/api/mask-revisions/", body).status_code == 409
    assert MaskRevision.objects.filter(source="review").count() == 0


@pytest.mark.django_db
def test_the_model_proposal_is_the_first_model_revision(case, target, annotator):
    first = MaskRevision.append(target, _mask(case, 1), "model")
    MaskRevision.append(target, _mask(case, 2), "human", author=annotator)
    MaskRevision.append(target, _mask(case, 3), "model")
    assert target.model_proposal.pk == first.pk


@pytest.mark.django_db
def test_the_first_box_gives_the_target_its_location_and_the_list_its_slice_range(case, annotator, client_for):
    client = client_for(annotator)
    target = client.post("/api/targets/", {"case": case.pk, "label": "lesion"}).json()
    for box in ([1, 2, 5, 6], [0, 0, 8, 8]):
        client.post("/api/prompts/", {"target": target["id"], "frame": 2, "kind": "box", "payload": {"box": box}})
    row = Target.objects.get(pk=target["id"])
    assert row.location == {"box": [1.0, 2.0, 5.0, 6.0]}
    assert row.key_frame == 2
    mask = np.zeros(case.shape, dtype=bool)
    mask[1:4, 3, 3] = True
    MaskRevision.append(row, mask, "human", author=annotator)
    listed = client.get(f"/api/targets/?case={case.pk}").json()["results"]
    assert [t["frame_range"] for t in listed] == [[1, 3]]
    assert client.get(f"/api/targets/{row.pk}/").json()["frame_range"] == [1, 3]


@pytest.mark.django_db
def test_a_location_outside_the_frame_is_refused(target, annotator, client_for):
    client = client_for(annotator)
    assert client.patch(f"/api/targets/{target.pk}/", {"location": {"point": [9, 1]}}).status_code == 400
    response = client.patch(f"/api/targets/{target.pk}/", {"location": {"point": [4, 1]}})
    assert response.status_code == 200
    assert response.json()["location"] == {"point": [4.0, 1.0]}


@pytest.mark.django_db
def test_a_reviewers_slice_comment_reaches_the_annotator(case, open_round, annotator, reviewer, client_for):
    target = _submitted_by(case, annotator, open_round)
    body = {"target": target.pk, "frame": 1, "x": 4.5, "y": 3.0, "text": "the rim is missed here"}
    assert client_for(annotator).post("/api/slice-comments/", body).status_code == 403
    assert client_for(reviewer).post("/api/slice-comments/", {**body, "x": 8.0}).status_code == 400
    assert client_for(reviewer).post("/api/slice-comments/", body).status_code == 201
    client_for(reviewer).post(f"/api/targets/{target.pk}/reject/", {"comment": "see the slice comments"})
    seen = client_for(annotator).get(f"/api/slice-comments/?target={target.pk}").json()["results"]
    assert [(c["frame"], c["x"], c["y"], c["text"], c["author_username"]) for c in seen] == [
        (1, 4.5, 3.0, "the rim is missed here", "reviewer")
    ]


@pytest.mark.django_db
def test_a_manager_assigns_a_batch_and_each_worklist_finds_its_own(
    project, other_project, manager, annotator, reviewer, client_for
):
    cases = [
        Case.objects.create(project=project, name=f"c{i}", modality="CT", shape=[2, 4, 4], status=CaseStatus.READY)
        for i in range(4)
    ]
    stranger = Case.objects.create(project=other_project, name="x", modality="MR", shape=[2, 4, 4])
    client = client_for(manager)
    body = {"project": project.pk, "cases": [c.pk for c in cases[:3]], "annotator": annotator.pk,
            "reviewer": reviewer.pk}  # fmt: skip
    response = client.post("/api/cases/assign/", body)
    assert response.json() == {"updated": 3}
    mine = client_for(annotator).get("/api/cases/?mine=1").json()["results"]
    assert [c["name"] for c in mine] == ["c0", "c1", "c2"]
    reviewing = client_for(reviewer).get("/api/cases/?reviewing=1").json()["results"]
    assert [(c["name"], c["reviewer_username"]) for c in reviewing] == [("c0", "reviewer"), ("c1", "reviewer"),
                                                                        ("c2", "reviewer")]  # fmt: skip
    # a reviewer must be a reviewer; another project's case spoils the whole batch
    assert client.post("/api/cases/assign/", {**body, "reviewer": annotator.pk}).status_code == 400
    bad = client.post("/api/cases/assign/", {**body, "cases": [cases[3].pk, stranger.pk], "annotator": None})
    assert bad.status_code == 400
    assert Case.objects.get(pk=cases[3].pk).assignee_id is None
    # null clears, and a left-out key stays
    client.post("/api/cases/assign/", {"project": project.pk, "cases": [cases[0].pk], "annotator": None})
    cases[0].refresh_from_db()
    assert (cases[0].assignee_id, cases[0].reviewer_id) == (None, reviewer.pk)
