"""A registered checkpoint becomes a candidate only after a strict, weights-only load on the worker."""

import pickle
from pathlib import Path

import pytest
import torch
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation_app.rounds.models import ModelVersion
from inference_worker.registry import verify_version
from medsam2.build import build_model, save_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def pending(project, path_or_bytes, config="test_tiny", sha256="") -> ModelVersion:
    name = f"models/{project.pk}/uploads/ckpt.pt"
    if isinstance(path_or_bytes, Path):
        with open(path_or_bytes, "rb") as handle:
            key = default_storage.save(name, File(handle, name="ckpt.pt"))
    else:
        key = default_storage.save(name, ContentFile(path_or_bytes))
    return ModelVersion.objects.create(
        project=project, name="v", checkpoint_key=key, config_name=config, sha256=sha256, status="pending"
    )


@pytest.fixture
def tiny_file(tmp_path) -> tuple[Path, str]:
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    return path, save_checkpoint(build_model("test_tiny"), path)


def test_a_checkpoint_that_loads_strictly_becomes_a_candidate_with_its_checksum(project, media, tiny_file):
    path, sha = tiny_file
    version = pending(project, path)
    assert verify_version(version.pk) == "candidate"
    version.refresh_from_db()
    assert (version.status, version.sha256, version.verified_at is not None) == ("candidate", sha, True)
    assert version.metrics["parameters"] == sum(p.numel() for p in build_model("test_tiny").parameters())
    assert verify_version(version.pk) == "skipped"  # a redelivered task changes nothing


def test_a_checkpoint_of_another_config_is_rejected_with_the_missing_and_mismatched_keys(project, media, tiny_file):
    version = pending(project, tiny_file[0], config="bootstrap_s")
    assert verify_version(version.pk) == "rejected"
    version.refresh_from_db()
    assert version.status_reason.startswith("the checkpoint does not fit config bootstrap_s: ")
    assert "shape mismatches" in version.status_reason and version.verified_at is None
    assert str(media) not in version.status_reason


def test_a_checksum_that_differs_from_the_one_given_is_rejected(project, media, tiny_file):
    version = pending(project, tiny_file[0], sha256="0" * 64)
    assert verify_version(version.pk) == "rejected"
    version.refresh_from_db()
    assert version.status_reason == f"the file's sha256 is {tiny_file[1]}, not the {'0' * 64} given"


class Payload:
    def __reduce__(self):
        return (print, ("this would run on the worker",))


def test_a_pickle_that_would_run_code_is_rejected_and_never_executed(project, media, tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    version = pending(project, path)
    assert verify_version(version.pk) == "rejected"
    version.refresh_from_db()
    assert version.status_reason == "the file is not a weights-only PyTorch checkpoint (UnpicklingError)"
    assert "would run" not in capsys.readouterr().out


def test_garbage_is_rejected(project, media):
    version = pending(project, b"PK\x03\x04 truncated")
    assert verify_version(version.pk) == "rejected"
    version.refresh_from_db()
    assert version.status_reason.startswith("the file is not a weights-only PyTorch checkpoint")
