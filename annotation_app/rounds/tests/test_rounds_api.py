"""Rounds, model versions and training runs through the API."""

import pytest

from annotation_app.lib import tasks
from annotation_app.rounds import lifecycle
from annotation_app.rounds.models import ModelVersion, Round, TrainingRun
from annotation_app.rounds.tests.factories import make_version, stored_checkpoint, trainable_round


@pytest.mark.django_db
def test_rounds_open_with_the_next_number_one_at_a_time(project, manager, client_for):
    client = client_for(manager)
    first = client.post("/api/rounds/", {"project": project.pk, "is_manual_baseline": True})
    assert first.status_code == 201
    assert (first.json()["number"], first.json()["status"]) == (1, "open")
    second = client.post("/api/rounds/", {"project": project.pk})
    assert second.status_code == 409
    assert "open round" in second.json()["detail"]
    closed = client.post(f"/api/rounds/{first.json()['id']}/close/")
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    assert client.post("/api/rounds/", {"project": project.pk}).json()["number"] == 2


@pytest.mark.django_db
def test_closing_a_closed_round_is_a_conflict(project, manager, client_for):
    round_ = lifecycle.close_round(Round.objects.create(project=project, number=1))
    assert client_for(manager).post(f"/api/rounds/{round_.pk}/close/").status_code == 409


@pytest.mark.django_db
def test_a_round_cannot_use_another_projects_model(project, other_project, manager, client_for):
    foreign = make_version(other_project, "v1")
    response = client_for(manager).post("/api/rounds/", {"project": project.pk, "model_version": foreign.pk})
    assert response.status_code == 400
    assert "model_version" in response.json()["errors"]


@pytest.mark.django_db
def test_activating_a_model_retires_the_previous_active_one(project, owner, client_for):
    client = client_for(owner)
    ids = [make_version(project, name).pk for name in ("v1", "v2")]
    client.post(f"/api/model-versions/{ids[0]}/activate/")
    assert client.post(f"/api/model-versions/{ids[1]}/activate/").json()["status"] == "active"
    statuses = dict(ModelVersion.objects.values_list("name", "status"))
    assert statuses == {"v1": "retired", "v2": "active"}


@pytest.mark.django_db
def test_a_model_version_checksum_must_be_hexadecimal(project, owner, client_for):
    body = {"project": project.pk, "name": "v1", "checkpoint_key": stored_checkpoint(project, "v1"), "sha256": "x"}
    response = client_for(owner).post("/api/model-versions/", body)
    assert response.status_code == 400
    assert "sha256" in response.json()["errors"]


@pytest.mark.django_db
def test_a_duplicate_model_name_is_a_conflict(project, owner, client_for):
    body = {"project": project.pk, "name": "v1", "checkpoint_key": stored_checkpoint(project, "v1")}
    client = client_for(owner)
    assert client.post("/api/model-versions/", body).status_code == 201
    assert client.post("/api/model-versions/", body).status_code in (400, 409)


@pytest.mark.django_db
def test_a_training_run_is_a_queued_row_whose_task_is_sent_by_name_after_commit(
    project, owner, client_for, django_capture_on_commit_callbacks, monkeypatch
):
    from celery import current_app

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **kw: sent.append((name, kw)))
    round_ = trainable_round(project, owner)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(owner).post(
            "/api/training-runs/", {"project": project.pk, "round": round_.pk, "hyperparameters": {"lr_other": 1e-5}}
        )
        assert response.status_code == 201, response.content
        assert sent == []  # nothing leaves before the row is committed
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.requested_by, run.hyperparameters) == ("queued", owner, {"lr_other": 1e-5})
    assert (run.round, run.base_model) == (round_, round_.model_version)
    for callback in callbacks:
        callback()
    assert sent == [(tasks.FINE_TUNE.name, {"args": [run.pk], "task_id": run.celery_task_id, "queue": "training"})]


@pytest.mark.django_db
def test_cancelling_a_queued_training_run_cancels_it_at_once(project, owner, client_for):
    run = TrainingRun.objects.create(project=project)
    body = client_for(owner).post(f"/api/training-runs/{run.pk}/cancel/").json()
    assert (body["status"], body["cancel_requested"]) == ("cancelled", True)
    assert client_for(owner).post(f"/api/training-runs/{run.pk}/cancel/").status_code == 409


@pytest.mark.django_db
def test_training_runs_cannot_be_edited_or_deleted(project, owner, client_for):
    run = TrainingRun.objects.create(project=project)
    client = client_for(owner)
    assert client.patch(f"/api/training-runs/{run.pk}/", {"hyperparameters": {}}).status_code == 405
    assert client.delete(f"/api/training-runs/{run.pk}/").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_two_managers_opening_a_round_at_once_get_one_round_and_one_conflict(project, manager, owner):
    """Real concurrency needs a server database: SQLite serialises whole-database writes anyway."""
    import threading

    from django.db import connection
    from rest_framework.test import APIClient

    if connection.vendor != "postgresql":
        pytest.skip("row locks are exercised on Postgres only")
    barrier = threading.Barrier(2)
    codes = []

    def open_round(user):
        client = APIClient()
        client.force_authenticate(user=user)
        barrier.wait()
        try:
            codes.append(client.post("/api/rounds/", {"project": project.pk}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_round, args=(user,)) for user in (manager, owner)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [201, 409]
    assert list(Round.objects.filter(project=project).values_list("number", "status")) == [(1, "open")]


@pytest.mark.django_db
def test_a_model_assisted_round_records_the_active_model_and_a_baseline_round_none(project, manager, client_for):
    active = make_version(project, "v1", status="active")
    client = client_for(manager)
    baseline = client.post("/api/rounds/", {"project": project.pk, "is_manual_baseline": True}).json()
    assert baseline["model_version"] is None
    client.post(f"/api/rounds/{baseline['id']}/close/")
    assisted = client.post("/api/rounds/", {"project": project.pk}).json()
    assert assisted["model_version"] == active.pk
