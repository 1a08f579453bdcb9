"""Prompts through the API: payload validation in pixel (x, y) coordinates, withdraw (undo) and restore."""

import pytest

from annotation_app.annotations.models import Prompt


def post_prompt(client, target, kind, payload, frame=1):
    return client.post("/api/prompts/", {"target": target.pk, "frame": frame, "kind": kind, "payload": payload})


@pytest.mark.django_db
def test_a_box_inside_the_frame_is_stored_with_its_author(target, annotator, client_for):
    response = post_prompt(client_for(annotator), target, "box", {"box": [1, 2, 7, 8]})
    assert response.status_code == 201, response.content
    prompt = Prompt.objects.get(pk=response.json()["id"])
    assert prompt.payload == {"box": [1.0, 2.0, 7.0, 8.0]}
    assert prompt.author == annotator


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        ("box", {"box": [5, 2, 3, 6]}, "x0 < x1"),
        ("box", {"box": [0, 0, 9, 4]}, "inside the 8x8 frame"),
        ("box", {"box": [0, 0, 4]}, "list [x0, y0, x1, y1]"),
        ("box", {"box": [0, 0, 4, 4], "extra": 1}, "exactly the keys"),
        ("point", {"points": [[3, 3]], "labels": [1, 0]}, "same length"),
        ("point", {"points": [[8, 3]], "labels": [1]}, "outside the 8x8 frame"),
        ("point", {"points": [[3, 3]], "labels": [2]}, "labels are 1"),
        ("mask", {"rle": [10, 10], "height": 8, "width": 8}, "sum to 64"),
        ("mask", {"rle": [64], "height": 4, "width": 8}, "must be 8x8"),
    ],
)
def test_malformed_payloads_are_refused_with_the_reason(target, annotator, client_for, kind, payload, reason):
    response = post_prompt(client_for(annotator), target, kind, payload)
    assert response.status_code == 400
    assert reason in response.json()["errors"]["payload"][0]


@pytest.mark.django_db
def test_a_prompt_on_a_frame_beyond_the_case_is_refused(target, annotator, client_for):
    response = post_prompt(client_for(annotator), target, "box", {"box": [1, 1, 4, 4]}, frame=4)
    assert response.status_code == 400
    assert "frame" in response.json()["errors"]


@pytest.mark.django_db
def test_withdraw_hides_a_prompt_and_restore_brings_it_back(target, annotator, client_for):
    client = client_for(annotator)
    prompt_id = post_prompt(client, target, "point", {"points": [[3, 4]], "labels": [1]}).json()["id"]
    assert client.post(f"/api/prompts/{prompt_id}/withdraw/").json()["withdrawn"] is True
    assert client.post(f"/api/prompts/{prompt_id}/withdraw/").status_code == 409
    active = client.get(f"/api/prompts/?target={target.pk}&withdrawn=false").json()["results"]
    assert active == []
    assert client.post(f"/api/prompts/{prompt_id}/restore/").json()["withdrawn"] is False
    assert Prompt.objects.filter(pk=prompt_id, withdrawn=False).exists()


@pytest.mark.django_db
def test_prompts_cannot_be_edited_or_deleted(target, annotator, client_for):
    client = client_for(annotator)
    prompt_id = post_prompt(client, target, "box", {"box": [1, 1, 4, 4]}).json()["id"]
    assert client.patch(f"/api/prompts/{prompt_id}/", {"frame": 2}).status_code == 405
    assert client.delete(f"/api/prompts/{prompt_id}/").status_code == 405


@pytest.mark.django_db
def test_a_submitted_target_takes_no_new_prompts(target, case, annotator, client_for):
    import numpy as np

    from annotation_app.annotations.models import MaskRevision

    MaskRevision.append(target, np.ones(case.shape, dtype=bool), "human")
    target.submit()
    response = post_prompt(client_for(annotator), target, "box", {"box": [1, 1, 4, 4]})
    assert response.status_code == 409
    assert "submitted" in response.json()["detail"]
