"""The per-process caches: a checkpoint loads once per model, case states are an LRU bounded in bytes."""

import dataclasses

import numpy as np
import pytest

from inference_worker import model_cache
from inference_worker.model_cache import ModelCache, ModelSpec, ModelUnavailable, estimate_nbytes


@dataclasses.dataclass
class FakeState:
    frames: np.ndarray
    features: dict


def state_of(nbytes: int) -> FakeState:
    return FakeState(frames=np.zeros(nbytes // 2, np.uint8), features={0: np.zeros(nbytes // 2, np.uint8)})


def test_estimate_nbytes_counts_arrays_in_nested_containers_once_and_skips_models():
    import torch

    shared = np.zeros(1000, np.uint8)
    state = {
        "a": shared,
        "b": [shared, torch.zeros(10, dtype=torch.float32)],
        "model": torch.nn.Linear(100, 100),
    }
    assert estimate_nbytes(state) == 1000 + 40


def test_a_model_is_loaded_once_per_checkpoint_and_device(monkeypatch, tmp_path):
    loads = []
    monkeypatch.setattr(model_cache, "load_model", lambda spec, device: loads.append((spec.name, device)) or object())
    path = tmp_path / "m.pt"
    path.write_bytes(b"weights")
    cache = ModelCache()
    spec = ModelSpec(checkpoint=path, config="test_tiny", name="m", sha256="abc")
    first, loaded = cache.model(spec, "cpu")
    again, loaded_again = cache.model(spec, "cpu")
    assert (loaded, loaded_again) == (True, False) and first is again
    cache.model(dataclasses.replace(spec, sha256="def"), "cpu")
    assert loads == [("m", "cpu"), ("m", "cpu")] and cache.model_loads == 2


def test_case_states_are_evicted_oldest_first_to_stay_under_the_byte_budget():
    cache = ModelCache(feature_cache_bytes=3000)
    builds = []

    def builder(name):
        return lambda: builds.append(name) or ("predictor", state_of(1000))

    for case in (1, 2, 3):
        cache.case_state((case,), ("m",), builder(case))
    assert cache.cached_bytes() == 3000
    _, _, hit = cache.case_state((1,), ("m",), builder("1-again"))  # touch 1: now 2 is the oldest
    assert hit
    cache.case_state((4,), ("m",), builder(4))
    assert [key[0] for key in cache.cached_cases()] == [3, 1, 4]
    assert builds == [1, 2, 3, 4] and cache.cached_bytes() == 3000


def test_a_state_larger_than_the_budget_is_used_but_not_kept():
    cache = ModelCache(feature_cache_bytes=500)
    _, state, hit = cache.case_state((1,), ("m",), lambda: ("p", state_of(1000)))
    assert not hit and state.frames.size == 500
    assert cache.cached_cases() == [] and cache.cached_bytes() == 0


def test_a_real_tiny_checkpoint_loads_and_a_missing_one_is_a_clear_error(tmp_path):
    import torch

    from medsam2.build import build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    sha = save_checkpoint(build_model("test_tiny"), path)
    cache = ModelCache()
    model, _ = cache.model(ModelSpec(checkpoint=path, config="test_tiny", name="tiny", sha256=sha), "cpu")
    assert model.image_size == 64 and not model.training
    missing = ModelSpec(tmp_path / "nope.pt", config="test_tiny", name="gone", source="models/1/nope.pt")
    with pytest.raises(ModelUnavailable, match=r"^model checkpoint not found: models/1/nope.pt \(model gone\)$"):
        cache.model(missing, "cpu")
    wrong = ModelSpec(checkpoint=path, config="bootstrap_s", name="mismatch", source="models/1/tiny.pt")
    with pytest.raises(ModelUnavailable, match="could not be loaded from models/1/tiny.pt") as refused:
        cache.model(wrong, "cpu")
    assert str(tmp_path) not in str(refused.value)  # messages name the storage key, never the folder


def test_medsam2_device_pins_the_device(settings):
    settings.MEDSAM2_DEVICE = "cuda:1"  # settings.py reads the MEDSAM2_DEVICE variable once
    assert model_cache.choose_device() == "cuda:1"
    settings.MEDSAM2_DEVICE = ""
    assert model_cache.choose_device() == "cpu"  # this machine has no GPU
