"""SAM2 loss terms: values on hand-made logits, best-mask selection, object-presence gating."""

import torch

from medsam2.training.losses import LossWeights, dice_loss, focal_loss, iou_prediction_loss, step_loss


def _target():
    t = torch.zeros(1, 4, 4, dtype=torch.bool)
    t[0, :2, :] = True  # top half
    return t


def test_perfect_confident_logits_give_near_zero_focal_and_dice():
    t = _target()
    logits = torch.where(t, 20.0, -20.0)[:, None]  # (1,1,4,4)
    assert focal_loss(logits, t).item() < 1e-8
    assert dice_loss(logits, t).item() < 1e-6


def test_zero_logits_give_the_hand_computed_focal_and_dice():
    t = _target()
    logits = torch.zeros(1, 1, 4, 4)
    # p = 0.5 everywhere: ce = ln 2, (1 - p_t)^2 = 0.25, alpha 0.25 on positives / 0.75 on negatives
    expected_focal = (0.25 + 0.75) / 2 * 0.25 * torch.log(torch.tensor(2.0))
    assert torch.allclose(focal_loss(logits, t), expected_focal[None, None], atol=1e-6)
    # dice: 1 - (2 * 4 + 1) / (8 + 8 + 1)
    assert torch.allclose(dice_loss(logits, t), torch.tensor([[1 - 9 / 17]]), atol=1e-6)


def test_iou_prediction_loss_is_the_gap_to_the_actual_iou():
    t = _target()
    logits = torch.full((1, 1, 4, 4), -5.0)
    logits[0, 0, 0, :] = 5.0  # predicts the first row: IoU 4/8
    assert torch.allclose(iou_prediction_loss(logits, t, torch.tensor([[0.9]])), torch.tensor([[0.4]]))


def test_only_the_best_candidate_mask_receives_mask_gradient_but_all_receive_iou_gradient():
    t = _target()
    good = torch.where(t, 8.0, -8.0)[:, None]
    bad = -good
    logits = torch.cat([bad, good, bad], dim=1).requires_grad_(True)
    ious = torch.full((1, 3), 0.5, requires_grad=True)
    terms = step_loss(logits, ious, torch.tensor([[3.0]]), t, 1.0)
    terms["total"].backward()
    grad_per_mask = logits.grad.abs().flatten(2).sum(-1)[0]
    assert grad_per_mask[1] > 0 and grad_per_mask[0] == 0 and grad_per_mask[2] == 0
    assert (ious.grad.abs() > 0).all()
    assert terms["dice"].item() < 0.01


def test_mask_terms_are_skipped_when_the_object_is_absent_but_the_object_score_is_trained():
    t = torch.zeros(1, 4, 4, dtype=torch.bool)
    logits = torch.zeros(1, 1, 4, 4)
    terms = step_loss(logits, torch.tensor([[0.3]]), torch.tensor([[2.0]]), t, 1.0)
    assert terms["focal"].item() == 0 and terms["dice"].item() == 0 and terms["iou"].item() == 0
    # BCE(logit 2, target 0) = log(1 + e^2)
    assert abs(terms["obj"].item() - torch.log1p(torch.exp(torch.tensor(2.0))).item()) < 1e-5
    assert terms["total"].item() == terms["obj"].item()


def test_total_uses_the_recipe_weights():
    t = _target()
    logits = torch.zeros(1, 1, 4, 4)
    terms = step_loss(logits, torch.tensor([[0.0]]), torch.tensor([[0.0]]), t, 1.0, LossWeights())
    expected = 20 * terms["focal"] + terms["dice"] + terms["iou"] + terms["obj"]
    assert torch.allclose(terms["total"], expected)


def test_all_candidates_trains_every_candidate_mask_on_the_target():
    t = _target()
    good = torch.where(t, 8.0, -8.0)[:, None]
    logits = torch.cat([-good, good, -good], dim=1).requires_grad_(True)
    terms = step_loss(logits, torch.full((1, 3), 0.5), torch.tensor([[3.0]]), t, 1.0,
                      LossWeights(all_candidates=True))
    terms["total"].backward()
    assert (logits.grad.abs().flatten(2).sum(-1)[0] > 0).all()
    assert terms["dice"].item() > 0.5  # two of the three candidates are wrong


def test_absent_mask_trains_the_mask_towards_empty_where_the_object_is_absent():
    t = torch.zeros(1, 4, 4, dtype=torch.bool)
    logits = torch.zeros(1, 1, 4, 4, requires_grad=True)
    terms = step_loss(logits, torch.tensor([[0.3]]), torch.tensor([[2.0]]), t, 1.0, LossWeights(absent_mask=0.5))
    assert terms["focal"].item() > 0 and terms["dice"].item() > 0 and terms["iou"].item() == 0
    terms["total"].backward()
    assert (logits.grad > 0).all()  # every logit is pushed down
