"""Uploading a checkpoint through the API: a REAL worker process (default queue) loads it strictly."""

import time

import pytest
import torch

from annotation_app.rounds.models import ModelVersion
from medsam2.build import build_model, save_checkpoint

pytestmark = pytest.mark.slow


def wait_until_decided(version_id: int, worker, timeout: float = 90.0) -> ModelVersion:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version = ModelVersion.objects.get(pk=version_id)
        if version.status != "pending":
            return version
        time.sleep(0.2)
    raise AssertionError(f"version {version_id} still pending; worker log:\n{worker.log()}")


def test_an_uploaded_checkpoint_is_loaded_strictly_by_a_worker_before_it_can_be_activated(
    start_celery_worker, project, owner, client_for, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    worker = start_celery_worker(queues=("default",), env={"MEDSAM2_DEVICE": "cpu", "OMP_NUM_THREADS": "1"})
    torch.manual_seed(0)
    path = tmp_path / "MedSAM2_like.pt"
    save_checkpoint(build_model("test_tiny"), path)
    client = client_for(owner)

    def upload(name: str, config: str) -> int:
        with open(path, "rb") as handle:
            body = {"project": project.pk, "name": name, "config_name": config, "file": handle}
            response = client.post("/api/model-versions/upload/", body, format="multipart")
        assert response.status_code == 201, response.content
        assert client.post(f"/api/model-versions/{response.json()['id']}/activate/").status_code == 409
        return response.json()["id"]

    good, wrong = upload("tiny", "test_tiny"), upload("tiny as bootstrap", "bootstrap_s")
    good_version = wait_until_decided(good, worker)
    assert good_version.status == "candidate" and len(good_version.sha256) == 64
    assert client.post(f"/api/model-versions/{good}/activate/").json()["status"] == "active"
    wrong_version = wait_until_decided(wrong, worker)
    assert wrong_version.status == "rejected"
    assert wrong_version.status_reason.startswith("the checkpoint does not fit config bootstrap_s")
    assert str(settings.MEDIA_ROOT) not in wrong_version.status_reason
