"""A config knows its weights (timm's pretrained-config idea): the one lookup for CLI, worker, training."""

import json

import pytest

from medsam2.configs import PRETRAINED_DEFAULT, WEIGHTS_DIR, get_config, pretrained_weights
from medsam2.weights import bootstrap_checkpoint_path, bootstrap_metadata_path


def test_the_bootstrap_config_names_its_shipped_weights_and_the_weights_module_asks_the_registry():
    path, cfg = pretrained_weights()
    assert (PRETRAINED_DEFAULT, cfg.name, path) == ("bootstrap_s", "bootstrap_s", WEIGHTS_DIR / "bootstrap_s.pt")
    assert bootstrap_checkpoint_path() == path and path.is_file()
    meta = json.loads(bootstrap_metadata_path().read_text())
    assert meta["config"] == cfg.name and meta["image_size"] == cfg.image_size == 128


def test_a_config_without_shipped_weights_says_so_and_where_its_weights_are_published():
    from medsam2.checkpoints import CHECKPOINT_FILENAME, HF_REPO_ID

    assert get_config("medsam2_t512").weights_path is None
    with pytest.raises(LookupError, match="'medsam2_t512' ships no weights; .*wanglab/MedSAM2/MedSAM2_latest.pt"):
        pretrained_weights("medsam2_t512")
    # `medsam2 download` fetches what the config names
    assert (HF_REPO_ID, CHECKPOINT_FILENAME) == ("wanglab/MedSAM2", "MedSAM2_latest.pt")
    assert get_config("test_tiny").hub_weights == "" and get_config("test_tiny").weights_path is None
