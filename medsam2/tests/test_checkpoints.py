"""Checkpoint building, strict loading, saving and the offline download error."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medsam2.build import build_model, file_sha256, load_weights, save_checkpoint
from medsam2.checkpoints import CHECKPOINT_FILENAME, CheckpointError, checkpoint_filter_fn, download_medsam2

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("test_tiny")


def test_save_then_build_round_trips_every_tensor_and_returns_the_file_sha256(tiny, tmp_path):
    path = tmp_path / "ckpt" / "tiny.pt"
    digest = save_checkpoint(tiny, path, extra={"epoch": 3, "config": "test_tiny"})
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == file_sha256(path)
    raw = torch.load(path, weights_only=True)
    assert raw["epoch"] == 3 and raw["config"] == "test_tiny"
    loaded = build_model("test_tiny", checkpoint=path)
    theirs = loaded.state_dict()
    for k, v in tiny.state_dict().items():
        assert torch.equal(v, theirs[k]), k
    assert not loaded.training


def test_strict_loading_lists_missing_and_unexpected_keys(tiny, tmp_path):
    sd = dict(tiny.state_dict())
    del sd["no_mem_embed"]
    del sd["sam_mask_decoder.iou_token.weight"]
    sd["extra.head.weight"] = torch.zeros(2)
    path = tmp_path / "broken.pt"
    torch.save({"model": sd}, path)
    with pytest.raises(CheckpointError) as info:
        build_model("test_tiny", checkpoint=path)
    err = info.value
    assert err.missing == ["no_mem_embed", "sam_mask_decoder.iou_token.weight"]
    assert err.unexpected == ["extra.head.weight"]
    assert "no_mem_embed" in str(err) and "extra.head.weight" in str(err)


def test_a_checkpoint_of_another_size_reports_shape_mismatches(tiny):
    other = build_model("bootstrap_s")
    with pytest.raises(CheckpointError) as info:
        load_weights(other, tiny.state_dict())
    assert any(
        m.startswith("no_mem_embed: checkpoint (1, 1, 32) vs model (1, 1, 64)") for m in info.value.mismatched
    )


def test_a_missing_checkpoint_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        build_model("test_tiny", checkpoint=tmp_path / "nope.pt")


def test_the_filter_accepts_model_key_bare_dicts_and_module_prefixes():
    t = torch.ones(1)
    assert checkpoint_filter_fn({"model": {"a.b": t}}) == {"a.b": t}
    assert checkpoint_filter_fn({"a.b": t}) == {"a.b": t}
    assert checkpoint_filter_fn({"state_dict": {"module.a.b": t}}) == {"a.b": t}
    assert checkpoint_filter_fn({"model": {"module._orig_mod.a.b": t}}) == {"a.b": t}


def test_the_filter_rejects_non_tensor_entries_and_prefix_collisions():
    with pytest.raises(CheckpointError, match="not a tensor"):
        checkpoint_filter_fn({"model": {"a": 1}})
    with pytest.raises(CheckpointError, match="duplicate"):
        checkpoint_filter_fn({"a": torch.ones(1), "module.a": torch.ones(1)})


def test_extra_must_not_shadow_the_model_key(tiny, tmp_path):
    with pytest.raises(ValueError, match="model"):
        save_checkpoint(tiny, tmp_path / "x.pt", extra={"model": {}})


def test_download_returns_an_existing_file_without_touching_the_network(tmp_path):
    target = tmp_path / CHECKPOINT_FILENAME
    target.write_bytes(b"weights")
    assert download_medsam2(tmp_path) == target


def test_download_offline_says_where_to_put_the_file(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    code = (
        "import sys\n"
        "from medsam2.checkpoints import download_medsam2\n"
        "try:\n"
        f"    download_medsam2({str(tmp_path)!r})\n"
        "except RuntimeError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert str(tmp_path / CHECKPOINT_FILENAME) in proc.stdout
    assert "wanglab/MedSAM2" in proc.stdout
