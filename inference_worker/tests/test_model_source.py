"""Which model a job runs: the project's active version, else MEDSAM2_CHECKPOINT, else the bootstrap model."""

import json
import sys
import types

import pytest

from annotation_app.rounds.models import ModelVersion
from inference_worker.model_cache import ModelUnavailable
from inference_worker.model_source import resolve_model_spec


@pytest.fixture
def no_configured_checkpoint(settings):
    settings.MEDSAM2_CHECKPOINT = ""


@pytest.fixture
def fake_bootstrap(monkeypatch, tmp_path):
    """Install a stand-in `medsam2.training.bootstrap` whose checkpoint lies in tmp_path."""
    path = tmp_path / "bootstrap.pt"
    module = types.ModuleType("medsam2.training.bootstrap")
    module.bootstrap_checkpoint_path = lambda: path
    monkeypatch.setitem(sys.modules, "medsam2.training.bootstrap", module)
    return path


def test_the_active_model_version_wins(project, tmp_path, settings):
    settings.MEDSAM2_CHECKPOINT = str(tmp_path / "operator.pt")
    version = ModelVersion.objects.create(
        project=project,
        name="round-2",
        checkpoint_key="/models/r2.pt",
        sha256="ab" * 32,
        config_name="test_tiny",
    )
    version.activate()
    spec = resolve_model_spec(project.pk)
    assert (str(spec.checkpoint), spec.config, spec.name, spec.model_version_id) == (
        "/models/r2.pt",
        "test_tiny",
        "round-2",
        version.pk,
    )


def test_a_storage_key_resolves_to_the_local_media_file(project, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    ModelVersion.objects.create(project=project, name="v", checkpoint_key="models/v.pt").activate()
    assert resolve_model_spec(project.pk).checkpoint == tmp_path / "models" / "v.pt"


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


def test_the_bootstrap_model_is_the_last_resort_with_its_config_from_the_json(
    project, no_configured_checkpoint, fake_bootstrap
):
    fake_bootstrap.write_bytes(b"x")
    fake_bootstrap.with_suffix(".json").write_text(json.dumps({"config": "test_tiny", "dice": 0.83}))
    spec = resolve_model_spec(project.pk)
    assert (spec.checkpoint, spec.config, spec.name) == (
        fake_bootstrap,
        "test_tiny",
        "bootstrap (bootstrap.pt)",
    )


def test_no_model_at_all_fails_with_a_reason(project, no_configured_checkpoint, fake_bootstrap):
    with pytest.raises(
        ModelUnavailable, match="no model available: .* bootstrap checkpoint .*bootstrap.pt does not exist"
    ):
        resolve_model_spec(project.pk)
