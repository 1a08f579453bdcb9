"""Model modules: every config builds and runs, and the building blocks compute what they claim."""

from __future__ import annotations

import math

import pytest
import torch

from medsam2.build import build_model
from medsam2.configs import ModelConfig, TrunkConfig, get_config, list_configs, register_config
from medsam2.modeling import MemoryAttentionLayer, PointInputs, TrackOutput
from medsam2.modeling.common import apply_rope, axial_rope_angles, rope_phasors
from medsam2.modeling.hiera import _from_windows, _to_windows

SMALL = [n for n in list_configs() if get_config(n).image_size <= 256]
LARGE = [n for n in list_configs() if get_config(n).image_size > 256]


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def test_the_registry_holds_the_default_the_upstream_and_the_small_configs():
    assert {"medsam2_t512", "sam2.1_t1024", "test_tiny", "bootstrap_s"} <= set(list_configs())
    assert get_config().name == "medsam2_t512"
    assert get_config("medsam2_t512").image_size == 512
    assert get_config("sam2.1_t1024").image_size == 1024


def test_an_unknown_config_name_raises_a_key_error_listing_the_known_ones():
    with pytest.raises(KeyError, match="medsam2_t512"):
        get_config("no_such_model")


def test_registering_a_name_twice_is_refused_without_overwrite():
    cfg = ModelConfig(name="test_tiny_copy_for_registry", image_size=64, trunk=get_config("test_tiny").trunk)
    register_config(cfg)
    with pytest.raises(ValueError, match="already registered"):
        register_config(cfg)
    assert register_config(cfg, overwrite=True) is cfg


def test_an_inconsistent_config_is_rejected():
    with pytest.raises(ValueError, match="multiple of 32"):
        ModelConfig(name="bad", image_size=100)
    with pytest.raises(ValueError, match="one window size per stage"):
        ModelConfig(name="bad", trunk=TrunkConfig(window_spec=(8, 4)))


@pytest.mark.parametrize("name", SMALL)
def test_small_configs_track_a_prompted_frame_and_a_following_frame_without_nans(name):
    torch.manual_seed(0)
    model = build_model(name)
    s = model.image_size
    with torch.inference_mode():
        feats = model.encode_image(torch.randn(2, 3, s, s))
        f0, f1 = feats.select(0), feats.select(1)
        assert f0.vision.shape == (1, model.hidden_dim, s // 16, s // 16)
        assert [h.shape[-1] for h in f0.high_res] == [s // 4, s // 8]
        box = PointInputs(torch.tensor([[[s * 0.2, s * 0.2], [s * 0.7, s * 0.6]]]), torch.tensor([[2, 3]]))
        out0 = model.track_step(0, True, f0, box, None, {}, {}, 2)
        assert out0.pred_masks.shape == (1, 1, s // 4, s // 4)
        assert out0.maskmem_features is not None
        assert out0.maskmem_features.shape == (1, model.mem_dim, s // 16, s // 16)
        out1 = model.track_step(1, False, f1, None, None, {0: out0}, {}, 2)
    for t in (out0.pred_masks, out0.obj_ptr, out1.pred_masks, out1.obj_ptr, out1.maskmem_features):
        assert t is not None and torch.isfinite(t).all()


@pytest.mark.parametrize("name", LARGE)
def test_large_configs_build_with_the_sam2_1_tiny_parameter_count_and_run_their_heads(name):
    torch.manual_seed(0)
    model = build_model(name)
    # SAM2.1 Hiera-Tiny: 38,962,498 parameters (plus a 2x128 random-projection buffer).
    assert sum(p.numel() for p in model.parameters()) == 38_962_498
    f = model.feat_size
    with torch.inference_mode():
        vis = torch.randn(1, 256, f, f)
        high = [torch.randn(1, 32, 4 * f, 4 * f), torch.randn(1, 64, 2 * f, 2 * f)]
        sam = model.forward_sam_heads(vis, None, None, high, multimask_output=True)
    assert sam.multimasks.shape == (1, 3, 4 * f, 4 * f)
    assert sam.high_res_masks.shape == (1, 1, model.image_size, model.image_size)
    assert torch.isfinite(sam.multimasks).all() and torch.isfinite(sam.obj_ptr).all()


def test_window_partition_round_trips_and_pads_with_zeros():
    x = torch.arange(2 * 5 * 7 * 3, dtype=torch.float32).reshape(2, 5, 7, 3)
    win, padded = _to_windows(x, 4)
    assert padded == (8, 8)
    assert win.shape == (2 * 2 * 2, 4, 4, 3)
    assert torch.equal(win[0, :4, :4], x[0, :4, :4])
    assert torch.equal(win[3, 1:, 3:], torch.zeros(3, 1, 3))  # bottom-right window of image 0: padding
    assert torch.equal(_from_windows(win, 4, padded, (5, 7)), x)


def test_rope_equals_complex_multiplication_by_unit_phasors():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 16, 8)
    angles = axial_rope_angles(8, 4, 4)
    assert angles.shape == (16, 4)
    # token 5 is (x=1, y=1): x-columns rotate by 1 * freq, y-columns by 1 * freq
    assert torch.allclose(angles[5], torch.tensor([1.0, 0.01, 1.0, 0.01]))
    phasors = torch.polar(torch.ones_like(angles), angles)
    expected = torch.view_as_real(torch.view_as_complex(x.reshape(1, 2, 16, 4, 2)) * phasors).flatten(-2)
    assert torch.allclose(apply_rope(x, rope_phasors(angles)), expected, atol=1e-6)
    # rotation keeps the norm of every channel pair
    pairs = apply_rope(x, rope_phasors(angles)).reshape(1, 2, 16, 4, 2).norm(dim=-1)
    assert torch.allclose(pairs, x.reshape(1, 2, 16, 4, 2).norm(dim=-1), atol=1e-5)


def test_keys_are_rotated_grid_by_grid_and_pointer_tokens_are_left_alone():
    torch.manual_seed(0)
    model = build_model("test_tiny")
    layer = model.memory_attention.layers[0]
    assert isinstance(layer, MemoryAttentionLayer)
    attn = layer.cross_attn_image
    n = model.feat_size**2
    kh = torch.randn(1, 1, 2 * n + 4, attn.head_dim)
    phasors = attn._phasors(n, kh.device)
    expected = torch.cat([apply_rope(kh[:, :, :n], phasors), apply_rope(kh[:, :, n : 2 * n], phasors)], dim=2)
    for grad in (True, False):  # out-of-place (training) and in-place (inference) paths
        with torch.set_grad_enabled(grad):
            out = attn._rotate_keys(kh.clone(), phasors, 2 * n)
        assert torch.allclose(out[:, :, : 2 * n], expected, atol=1e-6)
        assert torch.equal(out[:, :, 2 * n :], kh[:, :, 2 * n :])


def test_bf16_inference_rotates_keys_and_queries_like_the_float32_complex_path():
    torch.manual_seed(0)
    model = build_model("test_tiny")
    attn = model.memory_attention.layers[0].cross_attn_image
    n = model.feat_size**2
    kh = torch.randn(1, 1, 3 * n + 4, attn.head_dim)
    phasors = attn._phasors(n, kh.device)
    with torch.no_grad():
        expected = attn._rotate_keys(kh.clone(), phasors, 3 * n)
        low = attn._rotate_keys(kh.bfloat16(), phasors, 3 * n)
    assert low.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa: agreement to its rounding, pointer tokens untouched
    assert torch.allclose(low.float(), expected, atol=0.05, rtol=0.02)
    assert torch.equal(low[:, :, 3 * n :], kh[:, :, 3 * n :].bfloat16())
    q = torch.randn(1, n, attn.embedding_dim)
    k = torch.randn(1, 2 * n, attn.kv_in_dim)
    with torch.no_grad():
        out32 = attn(q, k, k)
        attn.bfloat16()
        out16 = attn(q.bfloat16(), k.bfloat16(), k.bfloat16())
    assert (out16.float() - out32).abs().max() < 0.05 * out32.abs().max()


def test_the_neck_laterals_equal_the_1x1_convolutions_they_hold():
    torch.manual_seed(0)
    model = build_model("test_tiny")
    neck = model.image_encoder.neck
    xs = [torch.randn(1, ch, 2 ** (i + 2), 2 ** (i + 2)) for i, ch in enumerate(reversed(neck.backbone_channel_list))]
    # channels-last views, as the trunk returns them
    xs = [x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) for x in xs]
    from medsam2.modeling.hiera import _lateral_1x1

    for i, x in enumerate(xs):
        conv = neck.convs[len(xs) - 1 - i].conv
        assert torch.allclose(_lateral_1x1(conv, x), conv(x), atol=1e-5)


def test_a_box_becomes_a_filled_rectangle_mask_prompt_only_where_the_config_asks():
    from dataclasses import replace

    name = "test_tiny_box_mask"
    if name not in list_configs():
        register_config(replace(get_config("test_tiny"), name=name, box_mask_prompt=True))
    model = build_model(name)
    h, w = model.sam_prompt_encoder.mask_input_size
    cell = model.image_size / w
    # box (x0, y0, x1, y1) = (2, 4, 5, 7) cells in inclusive pixels; a click after it changes nothing
    box = [[2 * cell, 4 * cell], [6 * cell - 1, 8 * cell - 1], [1.0, 1.0]]
    pts = PointInputs(torch.tensor([box]), torch.tensor([[2, 3, 1]], dtype=torch.int32))
    prompt = model.box_as_mask_prompt(pts)
    assert prompt is not None and prompt.shape == (1, 1, h, w)
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[4:8, 2:6] = True
    assert torch.equal(prompt[0, 0] > 0, inside)
    assert set(prompt.unique().tolist()) == {-10.0, 10.0}
    clicks = PointInputs(torch.tensor([[[3.0, 3.0]]]), torch.tensor([[1]], dtype=torch.int32))
    assert model.box_as_mask_prompt(clicks) is None
    # off by default: the SAM2.1 and MedSAM2 configs never add it
    plain = build_model("test_tiny")
    assert plain.box_mask_prompt is False and get_config("medsam2_t512").box_mask_prompt is False


def test_a_tracked_frame_gets_its_predecessors_mask_as_prompt_only_where_the_config_asks():
    from dataclasses import replace

    name = "test_tiny_track_mask"
    if name not in list_configs():
        register_config(replace(get_config("test_tiny"), name=name, track_mask_prompt=True))
    model = build_model(name)
    s4 = model.image_size // 4
    prev = TrackOutput(pred_masks=torch.full((1, 1, s4, s4), -1024.0), obj_ptr=torch.zeros(1, 8),
                       object_score_logits=torch.zeros(1, 1), ious=torch.zeros(1))
    prev.pred_masks[..., :2, :2] = 50.0
    got = model.previous_mask_prompt(5, {}, {4: prev}, reverse=False)
    assert got is not None and got.shape == (1, 1, s4, s4)
    assert got.max() == 32.0 and got.min() == -32.0  # clamped like a correction's previous logits
    assert model.previous_mask_prompt(5, {6: prev}, {}, reverse=True) is not None  # the frame after
    assert model.previous_mask_prompt(5, {}, {3: prev}, reverse=False) is None  # not the neighbour
    assert build_model("test_tiny").previous_mask_prompt(5, {}, {4: prev}, reverse=False) is None


def test_a_mask_prompt_is_used_as_output_with_plus_minus_ten_logits():
    torch.manual_seed(0)
    model = build_model("test_tiny")
    s = model.image_size
    mask = torch.zeros(1, 1, s, s)
    mask[..., 8:40, 16:48] = 1
    with torch.inference_mode():
        feats = model.encode_image(torch.randn(1, 3, s, s))
        out = model.track_step(0, True, feats, None, mask, {}, {}, 1)
    assert isinstance(out, TrackOutput)
    assert out.pred_masks_high_res is not None
    assert torch.equal(out.pred_masks_high_res > 0, mask > 0)
    assert out.pred_masks_high_res.max().item() == 10.0 and out.pred_masks_high_res.min().item() == -10.0
    assert out.object_score_logits.item() == 10.0


def test_sine_position_encoding_of_the_first_cell_matches_the_formula():
    model = build_model("test_tiny")
    pe = model.image_encoder.neck.position_encoding.encoding(4, 4, torch.device("cpu"))
    d = model.hidden_dim
    assert pe.shape == (d, 4, 4)
    # y channel 0 at row 0: sin(1 / (4 + 1e-6) * 2 pi); channel 1: cos of the same angle
    angle = 1 / (4 + 1e-6) * 2 * math.pi
    assert pe[0, 0, 0].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert pe[1, 0, 0].item() == pytest.approx(math.cos(angle), abs=1e-6)


def _qkv(dtype, lq=200, lk=700, d=64, heads=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(3, heads, n, d, generator=gen).to(dtype) for n in (lq, lk, lk)]


def test_cpu_bf16_attention_matches_fp32_attention_within_bf16_rounding():
    from medsam2.modeling.common import attention

    q, k, v = _qkv(torch.bfloat16)
    got = attention(q, k, v)
    want = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float())
    assert got.dtype == torch.bfloat16 and got.shape == want.shape
    assert (got.float() - want).abs().max() < 0.05
    assert (got.float() - want).abs().mean() < 0.005


def test_cpu_bf16_attention_gives_the_same_result_in_query_chunks(monkeypatch):
    from medsam2.modeling import common

    q, k, v = _qkv(torch.bfloat16)
    whole = common.attention(q, k, v)
    monkeypatch.setattr(common, "_SCORE_BUDGET", 2 * 700 * 6 * 37)  # bf16 scores, 37 query rows at a time
    assert torch.equal(common.attention(q, k, v), whole)


def test_fp32_attention_is_exactly_pytorchs_sdpa():
    from medsam2.modeling.common import attention

    q, k, v = _qkv(torch.float32)
    assert torch.equal(attention(q, k, v), torch.nn.functional.scaled_dot_product_attention(q, k, v))
