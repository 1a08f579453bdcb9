"""Optimiser groups of the fine-tuning recipe, checked number by number on the test_tiny model."""

import pytest
import torch

from medsam2.build import build_model
from medsam2.training.optim import OptimConfig, build_optimizer, cosine_schedule, layer_scale, param_groups


@pytest.fixture(scope="module")
def groups():
    model = build_model("test_tiny")
    return model, {n: g for g in param_groups(model) for n in g["names"]}


def test_the_encoder_and_the_rest_get_the_two_recipe_learning_rates(groups):
    _, by_name = groups
    assert by_name["image_encoder.neck.convs.0.conv.weight"]["lr"] == pytest.approx(3e-5)
    assert by_name["sam_mask_decoder.iou_token.weight"]["lr"] == pytest.approx(5e-5)
    assert by_name["memory_attention.layers.0.linear1.weight"]["lr"] == pytest.approx(5e-5)


def test_trunk_blocks_decay_by_0_9_per_layer_from_the_top(groups):
    model, by_name = groups
    n = len(model.image_encoder.trunk.blocks)
    assert n == 5  # test_tiny stages (1, 1, 2, 1)
    for i in range(n):
        name = f"image_encoder.trunk.blocks.{i}.mlp.layers.0.weight"
        assert by_name[name]["lr"] == pytest.approx(3e-5 * 0.9 ** (n - i))
    assert by_name["image_encoder.trunk.patch_embed.proj.weight"]["lr"] == pytest.approx(3e-5 * 0.9 ** 6)
    # position embeddings are exempt from layer decay
    assert by_name["image_encoder.trunk.pos_embed"]["lr"] == pytest.approx(3e-5)


def test_biases_norms_and_position_embeddings_get_no_weight_decay(groups):
    _, by_name = groups
    assert by_name["image_encoder.trunk.blocks.0.mlp.layers.0.weight"]["weight_decay"] == 0.1
    assert by_name["image_encoder.trunk.blocks.0.mlp.layers.0.bias"]["weight_decay"] == 0.0
    assert by_name["image_encoder.trunk.blocks.0.norm1.weight"]["weight_decay"] == 0.0
    assert by_name["image_encoder.trunk.pos_embed"]["weight_decay"] == 0.0
    assert by_name["sam_mask_decoder.iou_token.weight"]["weight_decay"] == 0.1


def test_every_trainable_parameter_is_in_exactly_one_group(groups):
    model, _ = groups
    listed = [n for g in param_groups(model) for n in g["names"]]
    assert sorted(listed) == sorted(n for n, p in model.named_parameters() if p.requires_grad)


def test_layer_scale_outside_the_trunk_is_one():
    assert layer_scale("sam_mask_decoder.output_upscaling.0.weight", 12, 0.9) == 1.0
    assert layer_scale("image_encoder.trunk.blocks.11.attn.qkv.weight", 12, 0.9) == pytest.approx(0.9)


def test_the_cosine_schedule_ends_at_a_tenth_of_each_groups_lr():
    model = build_model("test_tiny")
    opt = build_optimizer(model, OptimConfig())
    start = [g["lr"] for g in opt.param_groups]
    sched = cosine_schedule(opt, total_steps=10)
    halfway = None
    for step in range(10):
        opt.step()
        sched.step()
        if step == 4:
            halfway = [g["lr"] for g in opt.param_groups]
    end = [g["lr"] for g in opt.param_groups]
    assert end == pytest.approx([0.1 * s for s in start])
    assert halfway == pytest.approx([0.55 * s for s in start])  # cos(pi/2) = 0 -> midpoint
    assert torch.is_tensor(model.no_mem_embed)
