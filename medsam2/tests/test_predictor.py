"""VolumePredictor on the tiny test model: prompts, propagation, corrections, caching, cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsam2.build import build_model
from medsam2.predictor import FrameResult, VolumePredictor

D, H, W = 9, 40, 52
BOX = (10.0, 8.0, 36.0, 30.0)


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _model(obj_bias: float):
    """Random tiny model whose object-score head is biased to say present (>0) or absent (<0)."""
    torch.manual_seed(0)
    model = build_model("test_tiny")
    last = model.sam_mask_decoder.pred_obj_score_head.get_submodule("layers.2")
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.bias.fill_(obj_bias)
    return model


@pytest.fixture(scope="module")
def present_model():
    return _model(5.0)


@pytest.fixture()
def volume():
    rng = np.random.default_rng(0)
    vol = rng.normal(0, 30, (D, H, W)).astype(np.float32)
    vol[:, 10:30, 12:36] += 150
    return vol


def test_a_box_prompt_returns_one_mask_at_the_original_resolution(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume, modality="CT", window="abdomen")
    res = pred.add_prompt(st, 4, obj_id=7, box=BOX)
    assert isinstance(res, FrameResult)
    assert res.frame_idx == 4 and res.obj_ids == [7]
    assert res.masks.shape == (1, H, W) and res.masks.dtype == bool
    assert res.logits.shape == (1, H, W) and res.logits.dtype == np.float32
    assert np.array_equal(res.masks, res.logits > 0)
    assert res.object_scores.shape == (1,) and res.object_scores[0] > 0
    assert 0.0 <= res.ious[0] <= 1.0
    assert st.encode_count == 1


def test_forward_propagation_yields_the_frames_after_the_start_in_order(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    pred.add_prompt(st, 3, 1, box=BOX)
    assert [r.frame_idx for r in pred.propagate(st, "forward")] == list(range(3, D))
    assert st.encode_count == D - 3


def test_backward_propagation_yields_the_frames_before_the_start_in_reverse(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    pred.add_prompt(st, 3, 1, box=BOX)
    assert [r.frame_idx for r in pred.propagate(st, "backward")] == [3, 2, 1, 0]


def test_both_directions_yield_every_frame_exactly_once_and_respect_max_frames(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    pred.add_prompt(st, 4, 1, box=BOX)
    frames = [r.frame_idx for r in pred.propagate(st, "both")]
    assert frames == [4, 5, 6, 7, 8, 3, 2, 1, 0]
    assert [r.frame_idx for r in pred.propagate(st, "both", max_frames=2)] == [4, 5, 6, 3, 2]


def test_a_correction_becomes_a_conditioning_frame_and_repropagation_encodes_nothing(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    pred.add_prompt(st, 4, 1, box=BOX)
    first = {r.frame_idx: r.logits for r in pred.propagate(st)}
    assert st.encode_count == D
    pred.add_prompt(st, 7, 1, points=[(20.0, 15.0), (40.0, 35.0)], labels=[1, 0])
    second = {r.frame_idx: r.logits for r in pred.propagate(st)}
    assert st.encode_count == D  # every frame came from the feature cache
    obj = st.objects[1]
    assert sorted(obj.cond) == [4, 7] and 7 not in obj.non_cond
    assert sorted(second) == list(range(D))
    assert np.abs(second[8] - first[8]).max() > 1e-4  # the new conditioning frame changed its neighbour


def test_cancellation_stops_within_one_frame(present_model, volume):
    pred = VolumePredictor(present_model, encode_batch=1)
    st = pred.init_state(volume)
    pred.add_prompt(st, 0, 1, box=BOX)
    seen: list[int] = []

    def cancel() -> bool:
        return len(seen) >= 3

    for r in pred.propagate(st, "forward", should_cancel=cancel):
        seen.append(r.frame_idx)
    assert seen == [0, 1, 2]
    assert st.encode_count == 3  # nothing was computed after the cancel


def test_two_objects_are_tracked_independently(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    pred.add_prompt(st, 2, 1, box=BOX)
    res = pred.add_prompt(st, 2, 2, points=[(40.0, 30.0)], labels=[1])
    assert res.obj_ids == [1, 2] and res.masks.shape == (2, H, W)
    out = list(pred.propagate(st))
    assert all(r.masks.shape == (2, H, W) for r in out)
    assert not np.array_equal(out[-1].logits[0], out[-1].logits[1])


def test_a_mask_prompt_reproduces_the_mask_on_its_frame(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    mask = np.zeros((H, W), bool)
    mask[8:32, 12:40] = True
    res = pred.add_prompt(st, 5, 1, mask=mask)
    inner = res.masks[0][10:30, 14:38]
    assert inner.all() and not res.masks[0][:4].any()


def test_reset_forgets_prompts_but_keeps_the_feature_cache(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    pred.add_prompt(st, 4, 1, box=BOX)
    list(pred.propagate(st))
    pred.reset(st)
    assert st.objects == {} and len(st.features) == D
    with pytest.raises(RuntimeError, match="add a prompt"):
        pred.propagate(st)
    pred.add_prompt(st, 1, 1, box=BOX)
    list(pred.propagate(st))
    assert st.encode_count == D


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame_idx": D, "box": BOX}, "out of range"),
        ({"frame_idx": 0, "box": (30, 10, 10, 30)}, "x0 <= x1"),
        ({"frame_idx": 0, "box": (1, 2, 3)}, "4 finite numbers"),
        ({"frame_idx": 0, "points": [(1, 2)], "labels": [1, 0]}, "1 points but 2 labels"),
        ({"frame_idx": 0, "points": [(1, 2)]}, "need labels"),
        ({"frame_idx": 0, "points": [(1, 2)], "labels": [5]}, "0 \\(background\\) or 1"),
        ({"frame_idx": 0}, "needs a box, points or a mask"),
        ({"frame_idx": 0, "box": BOX, "mask": np.ones((H, W), bool)}, "either a mask"),
        ({"frame_idx": 0, "mask": np.ones((3, 3), bool)}, "mask shape"),
    ],
)
def test_bad_prompts_raise_a_clear_value_error(present_model, volume, kwargs, message):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    with pytest.raises(ValueError, match=message):
        pred.add_prompt(st, obj_id=1, **kwargs)


def test_bad_arrays_and_directions_are_rejected(present_model, volume):
    pred = VolumePredictor(present_model)
    with pytest.raises(ValueError, match="shape"):
        pred.init_state(np.zeros((4, 4)))
    st = pred.init_state(volume)
    pred.add_prompt(st, 0, 1, box=BOX)
    with pytest.raises(ValueError, match="direction"):
        pred.propagate(st, "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_frames"):
        pred.propagate(st, max_frames=-1)
    with pytest.raises(ValueError, match="out of range"):
        pred.propagate(st, start_frame=D)


def test_early_stop_skips_frames_once_the_object_is_absent():
    model = _model(-5.0)  # the object is never present
    pred = VolumePredictor(model, absent_stop_frames=2, encode_batch=1)
    vol = np.random.default_rng(1).normal(0, 30, (D, H, W)).astype(np.float32)
    st = pred.init_state(vol)
    pred.add_prompt(st, 0, 1, box=BOX)
    out = list(pred.propagate(st, "forward"))
    assert [r.frame_idx for r in out] == list(range(D))
    assert not any(r.masks.any() for r in out)
    # prompt frame + 2 absent frames computed; the rest were skipped without encoding
    assert st.encode_count == 3
    assert sorted(st.objects[1].non_cond) == [1, 2]


def test_batched_encoding_and_fast_mode_cover_every_frame(present_model, volume):
    pred = VolumePredictor(present_model, fast=True, absent_stop_frames=None, encode_batch=4)
    st = pred.init_state(volume)
    pred.add_prompt(st, 4, 1, box=BOX)
    out = list(pred.propagate(st))
    assert sorted(r.frame_idx for r in out) == list(range(D))
    assert st.encode_count == D and all(np.isfinite(r.logits).all() for r in out)


def test_fast_mode_encodes_from_one_shared_bf16_copy_of_the_encoder(present_model, volume):
    from medsam2 import predictor as predictor_module

    enc = predictor_module._bf16_encoder(present_model)
    assert predictor_module._bf16_encoder(present_model) is enc  # made once per model
    assert {p.dtype for p in enc.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in present_model.image_encoder.parameters()} == {torch.float32}
    ref, fast = VolumePredictor(present_model), VolumePredictor(present_model, absent_stop_frames=None)
    fast.autocast_dtype, fast._encoder = torch.bfloat16, enc  # as where bf16 measures faster
    masks = {}
    for name, pred in (("fp32", ref), ("bf16", fast)):
        st = pred.init_state(volume)
        pred.add_prompt(st, 4, 1, box=BOX)
        masks[name] = np.stack([r.masks[0] for r in sorted(pred.propagate(st), key=lambda r: r.frame_idx)])
    a, b = masks["fp32"], masks["bf16"]
    assert a.any()
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.95


@pytest.mark.parametrize(("forced", "expected"), [("1", torch.bfloat16), ("0", None)])
def test_the_cpu_bf16_measurement_can_be_forced_either_way(present_model, monkeypatch, forced, expected):
    monkeypatch.setenv("MEDSAM2_CPU_BF16", forced)
    assert VolumePredictor(present_model, fast=True).autocast_dtype is expected
    assert VolumePredictor(present_model, fast=False).autocast_dtype is None


def test_the_cpu_bf16_measurement_runs_once_per_model_and_decides_fast_mode(present_model, monkeypatch):
    from medsam2 import predictor as predictor_module

    monkeypatch.delenv("MEDSAM2_CPU_BF16", raising=False)
    predictor_module._BF16_PAYS.pop(present_model, None)
    calls = {"n": 0}
    encode = present_model.encode_image

    def counting(*args, **kwargs):
        calls["n"] += 1
        return encode(*args, **kwargs)

    monkeypatch.setattr(present_model, "encode_image", counting)
    pays = predictor_module._cpu_bf16_pays(present_model)
    measured = calls["n"]
    assert measured in (0, 4)  # 0 where the CPU lacks AVX512-BF16, else warm-up + timed, each way
    assert predictor_module._cpu_bf16_pays(present_model) is pays and calls["n"] == measured
    fast = VolumePredictor(present_model, fast=True)
    assert fast.autocast_dtype is (torch.bfloat16 if pays else None)
    assert (fast._encoder is not None) == pays


def test_propagate_volume_stacks_masks_per_object(present_model, volume):
    pred = VolumePredictor(present_model)
    st = pred.init_state(volume)
    pred.add_prompt(st, 4, 3, box=BOX)
    vols = pred.propagate_volume(st, largest_component=True)
    assert list(vols) == [3]
    assert vols[3].shape == (D, H, W) and vols[3].dtype == bool
    assert vols[3][4].any()


def test_the_feature_cache_can_be_bounded(present_model, volume):
    pred = VolumePredictor(present_model, max_cached_frames=3, encode_batch=1)
    st = pred.init_state(volume)
    pred.add_prompt(st, 0, 1, box=BOX)
    list(pred.propagate(st, "forward"))
    assert len(st.features) == 3 and st.encode_count == D
