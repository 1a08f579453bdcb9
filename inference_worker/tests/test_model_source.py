"""Which model a job runs (the round's pinned version, the active version, MEDSAM2_CHECKPOINT, the
bootstrap model) and where a version's checkpoint is: only a storage key under models/<project>/."""

import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation_app.rounds.models import ModelVersion, Round
from inference_worker import model_source
from inference_worker.model_cache import ModelUnavailable
from inference_worker.model_source import resolve_model_spec


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def no_configured_checkpoint(settings):
    settings.MEDSAM2_CHECKPOINT = ""


@pytest.fixture
def fake_bootstrap(monkeypatch, tmp_path):
    """The shipped bootstrap checkpoint, moved to tmp_path (the config registry names the file)."""
    from medsam2 import configs

    path = tmp_path / "weights" / "bootstrap.pt"
    path.parent.mkdir()
    shipped = configs.get_config(configs.PRETRAINED_DEFAULT).with_overrides(weights=str(path))
    monkeypatch.setitem(configs._REGISTRY, configs.PRETRAINED_DEFAULT, shipped)
    return path


def stored_version(project, name: str, **fields) -> ModelVersion:
    key = default_storage.save(f"models/{project.pk}/{name}.pt", ContentFile(b"weights"))
    return ModelVersion.objects.create(
        project=project, name=name, checkpoint_key=key, config_name="test_tiny", verified_at=timezone.now(),
        **fields,
    )  # fmt: skip


def test_the_active_model_version_wins_and_resolves_to_its_file_in_storage(project, media, settings):
    settings.MEDSAM2_CHECKPOINT = str(media / "operator.pt")
    version = stored_version(project, "round-2", sha256="ab" * 32)
    version.activate()
    spec = resolve_model_spec(project.pk)
    assert (spec.checkpoint, spec.config, spec.name, spec.model_version_id, spec.source) == (
        media / "models" / str(project.pk) / "round-2.pt",
        "test_tiny",
        "round-2",
        version.pk,
        f"models/{project.pk}/round-2.pt",
    )


def test_a_targets_round_decides_and_a_round_pinned_to_no_version_uses_the_default(
    project, media, no_configured_checkpoint, fake_bootstrap
):
    fake_bootstrap.write_bytes(b"x")
    pinned, later = stored_version(project, "v1"), stored_version(project, "v2")
    pinned.activate()
    round_ = Round.objects.create(project=project, number=1, model_version=pinned)
    unpinned = Round.objects.create(project=project, number=2, status="closed")
    later.activate()
    assert resolve_model_spec(project.pk, round_).name == "v1"
    assert resolve_model_spec(project.pk, unpinned).checkpoint == fake_bootstrap
    assert resolve_model_spec(project.pk).name == "v2"  # outside any round: the active version


@pytest.mark.parametrize(
    "key",
    ["/etc/hostname", "../../etc/hostname", "models/{p}/../../../etc/hostname", "models/999/x.pt", "x.pt"],
)
def test_the_database_refuses_a_checkpoint_key_that_is_not_a_storage_key_of_the_project(project, key):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(project=project, name="evil", checkpoint_key=key.format(p=project.pk))


@pytest.mark.parametrize("key", ["/etc/hostname", "models/{p}/../../etc/hostname", "models/{p}//x.pt"])
def test_a_worker_refuses_a_server_path_without_naming_the_media_folder(project, media, key):
    version = ModelVersion(project=project, name="evil", checkpoint_key=key.format(p=project.pk), pk=1)
    with pytest.raises(ModelUnavailable, match="^model evil has no usable checkpoint: a storage key") as refused:
        model_source.spec_for_version(version)
    assert str(media) not in str(refused.value)


def test_a_version_whose_checkpoint_is_missing_from_storage_is_a_clear_error(project, media):
    version = ModelVersion.objects.create(project=project, name="gone", checkpoint_key=f"models/{project.pk}/gone.pt")
    with pytest.raises(ModelUnavailable) as refused:
        model_source.spec_for_version(version)
    assert str(refused.value) == f"model checkpoint not found in storage: models/{project.pk}/gone.pt (model gone)"


def test_without_a_version_the_operators_checkpoint_is_used(project, tmp_path, settings):
    path = tmp_path / "MedSAM2_latest.pt"
    path.write_bytes(b"x")
    settings.MEDSAM2_CHECKPOINT, settings.MEDSAM2_CONFIG = str(path), "medsam2_t512"
    spec = resolve_model_spec(project.pk)
    assert (spec.checkpoint, spec.config, spec.name, spec.model_version_id) == (
        path,
        "medsam2_t512",
        "MedSAM2_latest.pt",
        None,
    )


def test_a_configured_checkpoint_that_is_missing_is_a_clear_error(project, tmp_path, settings):
    settings.MEDSAM2_CHECKPOINT = str(tmp_path / "gone.pt")
    with pytest.raises(ModelUnavailable, match="MEDSAM2_CHECKPOINT points to a missing file: .*gone.pt"):
        resolve_model_spec(project.pk)


def test_the_bootstrap_model_is_the_last_resort_with_its_config_from_the_registry(
    project, no_configured_checkpoint, fake_bootstrap, monkeypatch
):
    from medsam2 import configs

    fake_bootstrap.write_bytes(b"x")
    # the registry, not a JSON beside the file, says which config the weights fit
    fake_bootstrap.with_suffix(".json").write_text(json.dumps({"config": "bootstrap_s", "dice": 0.83}))
    monkeypatch.setitem(configs._REGISTRY, "test_tiny", configs.get_config("test_tiny").with_overrides(
        weights=str(fake_bootstrap)))  # fmt: skip
    monkeypatch.setattr(configs, "PRETRAINED_DEFAULT", "test_tiny")
    spec = resolve_model_spec(project.pk)
    assert (spec.checkpoint, spec.config, spec.name) == (
        fake_bootstrap,
        "test_tiny",
        "bootstrap (bootstrap.pt)",
    )


def test_the_cli_and_the_worker_find_the_same_shipped_weights(project, no_configured_checkpoint, monkeypatch):
    from medsam2.cli import resolve_model_source

    monkeypatch.delenv("MEDSAM2_CHECKPOINT", raising=False)
    spec = resolve_model_spec(project.pk)
    assert (spec.checkpoint, spec.config) == resolve_model_source(None, None)
    assert spec.checkpoint.name == "bootstrap_s.pt" and spec.checkpoint.is_file()


def test_no_model_at_all_fails_with_a_reason(project, no_configured_checkpoint, fake_bootstrap):
    with pytest.raises(ModelUnavailable, match="no model available: .* bootstrap checkpoint is not installed"):
        resolve_model_spec(project.pk)
