"""Interaction events: batched, validated, idempotent on the client's event id, append-only."""

import json
import uuid

import pytest
from django.test import Client

from annotation_app.annotations.models import InteractionEvent


def event(target, kind="prompt_placed", **extra):
    return {"client_event_id": str(uuid.uuid4()), "kind": kind, "client_ts": "2026-01-02T03:04:05.678Z",
            "target": target.pk, "payload": {"x": 1}, **extra}  # fmt: skip


@pytest.mark.django_db
def test_a_batch_is_stored_with_case_and_project_filled_in_from_the_target(
    target, case, project, annotator, client_for
):
    batch = [event(target), event(target, kind="edit_stroke")]
    response = client_for(annotator).post("/api/events/", batch)
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 2, "duplicates": 0}
    stored = InteractionEvent.objects.get(client_event_id=batch[0]["client_event_id"])
    assert (stored.case, stored.project, stored.user, stored.payload) == (case, project, annotator, {"x": 1})


@pytest.mark.django_db
def test_sending_the_same_events_again_stores_nothing_new(target, annotator, client_for):
    batch = [event(target), event(target)]
    client = client_for(annotator)
    client.post("/api/events/", batch)
    again = client.post("/api/events/", [*batch, batch[0]])
    assert again.json() == {"created": 0, "duplicates": 3}
    assert InteractionEvent.objects.count() == 2


@pytest.mark.django_db
def test_one_bad_event_refuses_the_whole_batch_and_names_it(target, annotator, client_for):
    batch = [event(target), event(target, kind="teleport"), event(target, client_ts="yesterday")]
    response = client_for(annotator).post("/api/events/", batch)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert sorted(errors) == ["1", "2"]
    assert "kind" in errors["1"] and "client_ts" in errors["2"]
    assert InteractionEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_case_that_is_not_the_targets_case_is_refused(target, project, annotator, client_for):
    from annotation_app.imaging.models import Case

    other_case = Case.objects.create(project=project, name="other", modality="CT", shape=[2, 4, 4])
    response = client_for(annotator).post("/api/events/", [event(target, case=other_case.pk)])
    assert response.status_code == 400
    assert "case" in response.json()["errors"]["0"]


@pytest.mark.django_db
def test_an_event_needs_something_to_belong_to(annotator, client_for):
    body = {"client_event_id": str(uuid.uuid4()), "kind": "focus", "client_ts": "2026-01-02T03:04:05Z"}
    response = client_for(annotator).post("/api/events/", body)
    assert response.status_code == 400
    assert "project" in response.json()["errors"]["0"]


@pytest.mark.django_db
def test_a_page_closing_can_send_its_last_batch_as_a_beacon_form(target, annotator):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(annotator)
    browser.get("/api/auth/me/")
    token = browser.cookies["csrftoken"].value
    batch = [event(target, kind="visibility_hidden")]
    response = browser.post("/api/events/", {"events": json.dumps(batch), "csrfmiddlewaretoken": token})
    assert response.status_code == 201, response.content
    assert InteractionEvent.objects.filter(kind="visibility_hidden").count() == 1


@pytest.mark.django_db
def test_annotators_see_their_own_events_and_managers_see_everyones(target, annotator, reviewer, manager, client_for):
    client_for(annotator).post("/api/events/", [event(target)])
    client_for(reviewer).post("/api/events/", [event(target, kind="review_accept")])
    assert {e["kind"] for e in client_for(annotator).get("/api/events/").json()["results"]} == {"prompt_placed"}
    assert client_for(manager).get("/api/events/").json()["count"] == 2


@pytest.mark.django_db
def test_batches_over_500_events_are_refused(target, annotator, client_for):
    response = client_for(annotator).post("/api/events/", [event(target) for _ in range(501)])
    assert response.status_code == 400
    assert "500" in response.json()["detail"]


@pytest.mark.django_db
def test_events_can_be_read_back_for_a_time_window(target, manager, annotator, client_for):
    client_for(annotator).post(
        "/api/events/",
        [
            event(target, client_ts="2026-01-01T10:00:00Z"),
            event(target, kind="submit", client_ts="2026-01-01T11:00:00Z"),
        ],
    )
    window = "since=2026-01-01T10:30:00Z&until=2026-01-01T12:00:00Z"
    rows = client_for(manager).get(f"/api/events/?{window}").json()["results"]
    assert [r["kind"] for r in rows] == ["submit"]


@pytest.mark.django_db
def test_a_batch_costs_a_fixed_number_of_queries_not_one_per_event(
    target, annotator, client_for, django_assert_max_num_queries
):
    client = client_for(annotator)
    client.post("/api/events/", [event(target)])  # warm caches (content types, sessions)
    with django_assert_max_num_queries(12):
        response = client.post("/api/events/", [event(target) for _ in range(200)])
    assert response.json() == {"created": 200, "duplicates": 0}


@pytest.mark.django_db
def test_a_batch_naming_another_projects_target_is_refused(target, other_project, outsider, client_for):
    response = client_for(outsider).post("/api/events/", [event(target)])
    assert response.status_code == 400
    assert "does not exist" in str(response.json()["errors"]["0"]["target"])
