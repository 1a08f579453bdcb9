"""SAM2 training loss: focal + dice + IoU-prediction L1 + object-score BCE.

The mask decoder emits M candidate masks (M = 3 with multimask output, else 1). As in SAM2,
only the candidate that best matches the ground truth (lowest 20 * focal + dice) is trained
on focal and dice, while the IoU head is supervised on all M candidates; mask terms count
only where the object is present, the object-score term everywhere.

Shapes: ``logits`` (N, M, H, W) mask logits at image resolution, ``target`` (N, H, W) bool,
``iou_pred`` (N, M) predicted IoU (probabilities), ``obj_logits`` (N, 1) object-score logits.
N counts objects; sums are divided by ``num_objects`` to keep the scale per object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    focal: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    obj: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    # train every candidate of a multimask output on the target instead of the best one only
    # (SAM2 trains the best); for tracked frames, where a best-of-3 loss lets the decoder hedge
    # with three salient blobs instead of learning to follow the memory
    all_candidates: bool = False
    # also train the mask on frames where the object is absent (target: empty), weighted by this;
    # SAM2 leaves those frames to the object score alone (0)
    absent_mask: float = 0.0


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
               gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss averaged over pixels: (N, M, H, W) logits, (N, H, W) target -> (N, M)."""
    t = target[:, None].to(logits.dtype).expand_as(logits)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.flatten(2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft dice loss with +1 smoothing: (N, M, H, W) logits, (N, H, W) target -> (N, M)."""
    p = torch.sigmoid(logits).flatten(2)
    t = target[:, None].to(p.dtype).flatten(2)
    inter = (p * t).sum(-1)
    return 1 - (2 * inter + 1) / (p.sum(-1) + t.sum(-1) + 1)


def iou_prediction_loss(logits: torch.Tensor, target: torch.Tensor,
                        iou_pred: torch.Tensor) -> torch.Tensor:
    """L1 between predicted IoU and the actual IoU of each thresholded candidate -> (N, M)."""
    pred = (logits > 0).flatten(2)
    t = target[:, None].flatten(2)
    inter = (pred & t).sum(-1).float()
    union = (pred | t).sum(-1).float().clamp(min=1.0)
    return (iou_pred.float() - inter / union).abs()


def step_loss(logits: torch.Tensor, iou_pred: torch.Tensor, obj_logits: torch.Tensor,
              target: torch.Tensor, num_objects: float,
              weights: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """Loss terms of one prediction step on one frame (see module docstring for shapes).

    Returns a dict with the weighted ``total`` and the unweighted ``focal``, ``dice``,
    ``iou`` and ``obj`` terms (each already divided by ``num_objects``).
    """
    present = target.flatten(1).any(dim=1).float()  # (N,)
    focal = focal_loss(logits, target, weights.focal_alpha, weights.focal_gamma)
    dice = dice_loss(logits, target)
    iou = iou_prediction_loss(logits, target, iou_pred)
    if logits.shape[1] > 1 and weights.all_candidates:
        focal = focal.mean(dim=1, keepdim=True)
        dice = dice.mean(dim=1, keepdim=True)
    elif logits.shape[1] > 1:
        # pick the best candidate without letting the choice itself carry gradient
        best = (focal * weights.focal + dice).detach().argmin(dim=1, keepdim=True)
        focal = focal.gather(1, best)
        dice = dice.gather(1, best)
    iou = iou.mean(dim=1)
    obj = F.binary_cross_entropy_with_logits(
        obj_logits.float().reshape(-1), present, reduction="none"
    )
    mask_w = present + weights.absent_mask * (1 - present)
    terms = {
        "focal": (focal[:, 0] * mask_w).sum() / num_objects,
        "dice": (dice[:, 0] * mask_w).sum() / num_objects,
        "iou": (iou * present).sum() / num_objects,
        "obj": obj.sum() / num_objects,
    }
    terms["total"] = (weights.focal * terms["focal"] + weights.dice * terms["dice"]
                      + weights.iou * terms["iou"] + weights.obj * terms["obj"])
    return terms
