"""Prompt simulation: boxes, error-driven clicks, and the per-clip prompt plan."""

import torch

from medsam2.training.prompts import mask_to_box, noisy_box_points, plan_prompts, sample_error_clicks


def _square():
    m = torch.zeros(1, 20, 30, dtype=torch.bool)
    m[0, 5:10, 12:20] = True  # rows 5..9 (y), columns 12..19 (x)
    return m


def test_mask_to_box_returns_inclusive_corners_in_x_y_order():
    assert mask_to_box(_square()).tolist() == [[12.0, 5.0, 19.0, 9.0]]


def test_box_noise_stays_within_ten_percent_of_the_box_side():
    g = torch.Generator().manual_seed(0)
    coords, labels = noisy_box_points(_square().repeat(200, 1, 1), g)
    assert labels[0].tolist() == [2, 3]
    ref = torch.tensor([[12.0, 5.0], [19.0, 9.0]])
    dev = (coords - ref).abs()
    assert dev[..., 0].max() <= 0.7 + 1e-6 and dev[..., 1].max() <= 0.4 + 1e-6
    assert dev.max() > 0.1  # it is noisy


def test_clicks_are_positive_in_missed_pixels_and_negative_in_false_positives():
    gt = _square()
    g = torch.Generator().manual_seed(1)
    coords, labels = sample_error_clicks(gt, torch.zeros_like(gt), g)  # all missed
    x, y = coords[0, 0].long().tolist()
    assert labels.item() == 1 and gt[0, y, x]
    pred = gt.clone()
    pred[0, 15:18, 0:3] = True  # a false positive blob
    coords, labels = sample_error_clicks(gt, pred, g)
    x, y = coords[0, 0].long().tolist()
    assert labels.item() == 0 and 15 <= y < 18 and 0 <= x < 3


def test_a_perfect_prediction_gets_a_negative_background_click():
    gt = _square()
    coords, labels = sample_error_clicks(gt, gt.clone(), torch.Generator().manual_seed(2))
    x, y = coords[0, 0].long().tolist()
    assert labels.item() == 0 and not gt[0, y, x]


def test_prompt_plans_mix_masks_and_boxes_about_half_and_half_and_start_on_frame_zero():
    g = torch.Generator().manual_seed(3)
    plans = [plan_prompts(8, list(range(8)), g) for _ in range(400)]
    share_mask = sum(p.use_mask for p in plans) / len(plans)
    assert 0.4 < share_mask < 0.6
    assert all(p.cond_frames[0] == 0 and 1 <= len(p.cond_frames) <= 2 for p in plans)
    assert any(len(p.cond_frames) == 2 for p in plans)
    boxed = [p for p in plans if not p.use_mask]
    assert all(p.correct_frames[0] == 0 and p.num_corrections == 7 for p in boxed)
    assert all(not p.correct_frames for p in plans if p.use_mask)


def test_extra_conditioning_frames_only_come_from_frames_showing_the_object():
    g = torch.Generator().manual_seed(4)
    plans = [plan_prompts(8, [0, 5], g) for _ in range(100)]
    assert {f for p in plans for f in p.cond_frames} == {0, 5}


def test_a_single_frame_clip_is_always_prompted_with_a_box():
    g = torch.Generator().manual_seed(5)
    plans = [plan_prompts(1, [0], g) for _ in range(50)]
    assert not any(p.use_mask for p in plans)
    assert all(p.cond_frames == [0] and p.correct_frames == [0] for p in plans)


def test_a_plan_for_a_clip_tracked_from_its_middle_prompts_and_corrects_that_frame_first():
    g = torch.Generator().manual_seed(6)
    plans = [plan_prompts(8, list(range(8)), g, first=3) for _ in range(100)]
    assert all(p.cond_frames[0] == 3 for p in plans)
    assert all(p.correct_frames[0] == 3 and p.correct_frames.count(3) == 1 for p in plans if not p.use_mask)
    assert any(0 in p.cond_frames[1:] or 0 in p.correct_frames for p in plans)
