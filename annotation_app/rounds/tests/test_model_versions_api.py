"""Model versions through the API: checkpoints only as storage keys of the project, uploads, and the
worker's strict load before a version can be used (the worker itself: inference_worker/tests/test_registry.py
and tests/test_model_registry_worker.py)."""

import io

import pytest
from django.core.files.storage import default_storage

from annotation_app.lib import tasks
from annotation_app.rounds.models import ModelVersion
from annotation_app.rounds.tests.factories import make_version, stored_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    from annotation_app.celery import app

    calls = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kw: calls.append((name, args)))
    return calls


@pytest.mark.parametrize(
    "key",
    [
        "/etc/hostname",
        "../../etc/hostname",
        "models/{p}/../../../etc/hostname",
        "models/{p}/./x.pt",
        "models/{p}//x.pt",
        "C:\\\\models\\\\x.pt",
        "models/{other}/x.pt",
        "uploads/{p}/x.pt",
        "~/x.pt",
    ],
)
def test_a_checkpoint_key_that_is_not_a_storage_key_of_the_project_is_refused_without_naming_the_media_root(
    key, project, other_project, owner, client_for, media, sent
):
    key = key.format(p=project.pk, other=other_project.pk)
    body = {"project": project.pk, "name": "evil", "checkpoint_key": key}
    response = client_for(owner).post("/api/model-versions/", body)
    assert response.status_code == 400, response.content
    assert "checkpoint_key" in response.json()["errors"]
    assert str(media) not in response.content.decode() and "/etc" not in response.json()["errors"]["checkpoint_key"][0]
    assert not ModelVersion.objects.exists() and sent == []


def test_a_key_with_nothing_stored_under_it_is_refused(project, owner, client_for, sent):
    body = {"project": project.pk, "name": "v1", "checkpoint_key": f"models/{project.pk}/missing.pt"}
    response = client_for(owner).post("/api/model-versions/", body)
    assert response.status_code == 400
    assert response.json()["errors"]["checkpoint_key"] == ["No checkpoint is stored under this key; upload it first."]


def test_a_stored_key_registers_a_pending_version_and_sends_its_strict_load_after_commit(
    project, owner, client_for, sent, django_capture_on_commit_callbacks
):
    body = {"project": project.pk, "name": "v1", "checkpoint_key": stored_checkpoint(project, "v1")}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post("/api/model-versions/", body)
    assert response.status_code == 201, response.content
    version = ModelVersion.objects.get()
    assert (version.status, version.created_by, version.verified_at) == ("pending", owner, None)
    assert sent == [(tasks.VERIFY_CHECKPOINT.name, [version.pk])]


def test_a_pending_version_cannot_be_activated(project, owner, client_for):
    version = ModelVersion.objects.create(
        project=project, name="v1", checkpoint_key=stored_checkpoint(project, "v1"), status="pending"
    )
    response = client_for(owner).post(f"/api/model-versions/{version.pk}/activate/")
    assert response.status_code == 409
    assert "has not loaded" in response.json()["detail"]


def test_an_unknown_config_is_refused(project, owner, client_for):
    body = {"project": project.pk, "name": "v1", "checkpoint_key": stored_checkpoint(project, "v1"), "config_name": "x"}
    response = client_for(owner).post("/api/model-versions/", body)
    assert response.status_code == 400 and "config_name" in response.json()["errors"]


def test_the_key_the_metrics_and_the_status_cannot_be_edited(project, owner, client_for):
    version = make_version(project, "v1")
    client = client_for(owner)
    assert client.patch(f"/api/model-versions/{version.pk}/", {"checkpoint_key": "models/1/x.pt"}).status_code == 400
    assert client.patch(f"/api/model-versions/{version.pk}/", {"metrics": {"dice": 1.0}}).status_code == 400
    assert client.patch(f"/api/model-versions/{version.pk}/", {"status": "active"}).status_code == 400


def _upload(client, project, content: bytes, **fields):
    body = {"project": project.pk, "name": "official", "config_name": "medsam2_t512", **fields}
    body["file"] = io.BytesIO(content)
    body["file"].name = "MedSAM2_latest.pt"
    return client.post("/api/model-versions/upload/", body, format="multipart")


def test_an_uploaded_checkpoint_is_stored_in_the_projects_models_folder_and_waits_for_its_strict_load(
    project, owner, client_for, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client_for(owner), project, b"PK\x03\x04rest of a zip")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["checkpoint_key"].startswith(f"models/{project.pk}/uploads/")
    assert default_storage.open(body["checkpoint_key"]).read() == b"PK\x03\x04rest of a zip"
    assert sent == [(tasks.VERIFY_CHECKPOINT.name, [body["id"]])]


def test_an_upload_that_is_not_a_torch_file_leaves_no_row_and_no_file(project, owner, client_for, media, sent):
    response = _upload(client_for(owner), project, b"#!/bin/sh\nrm -rf /\n")
    assert response.status_code == 400
    assert response.json()["errors"]["file"] == ["This is not a PyTorch checkpoint (torch.save file)."]
    assert not ModelVersion.objects.exists() and sent == []
    assert [p for p in media.rglob("*") if p.is_file()] == []


def test_only_an_admin_uploads_a_checkpoint(project, manager, client_for, sent):
    response = _upload(client_for(manager), project, b"PK\x03\x04")
    assert response.status_code == 403
    assert not ModelVersion.objects.exists()
