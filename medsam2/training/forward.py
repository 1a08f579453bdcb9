"""Training forward pass over one clip, the way SAM2 trains its video model.

Frames are visited conditioning frames first, then the rest in clip order. When the first
conditioning frame sits inside the clip, the frames after it are tracked forward and then the
frames before it backward (memory picked in reverse), exactly as the predictor's "both"
propagation does: the backward pass then attends to forward-tracked frames, which a clip
prompted on its first frame never shows the model. A conditioning
frame is prompted with its ground-truth mask or with a noisy box; frames chosen for correction
then receive simulated clicks one at a time, each drawn from the current error region and fed
back together with the previous low-resolution logits. Every frame writes a memory (from its
*predicted* mask) that later frames attend to. All objects of the clip run as one batch.

The model is :class:`medsam2.modeling.SAM2Base`; the step is assembled from its public parts
(``memory_conditioned_features``, ``forward_sam_heads``, ``mask_as_output``, ``encode_memory``)
because corrections need the memory-conditioned features of the frame, which ``track_step``
keeps to itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medsam2.modeling.common import resize_bilinear
from medsam2.modeling.sam2_base import ImageFeatures, PointInputs, SAM2Base, SamOutput, TrackOutput
from medsam2.training.prompts import PromptPlan, noisy_box_points, sample_error_clicks


@dataclass
class StepOutput:
    """One supervised prediction.

    Attributes:
        frame: index in the clip.
        multimasks: (O, M, S, S) mask logits at input resolution (all M candidates).
        ious: (O, M) predicted IoU.
        obj_logits: (O, 1) object-score logits.
    """

    frame: int
    multimasks: torch.Tensor
    ious: torch.Tensor
    obj_logits: torch.Tensor


def _cat_points(prev: PointInputs | None, coords: torch.Tensor, labels: torch.Tensor) -> PointInputs:
    if prev is None:
        return PointInputs(coords, labels)
    return PointInputs(torch.cat([prev.coords, coords], dim=1), torch.cat([prev.labels, labels], dim=1))


def _frame_features(feats: ImageFeatures, t: int, n: int) -> ImageFeatures:
    """Frame ``t``'s features repeated for ``n`` objects (views, no copy)."""
    one = feats.select(t)
    return ImageFeatures(one.vision.expand(n, -1, -1, -1), one.vision_pos.expand(n, -1, -1, -1),
                         [h.expand(n, -1, -1, -1) for h in one.high_res])


def _supervised(t: int, sam: SamOutput, size: int) -> StepOutput:
    # the decoder's candidates are S/4 logits; SAM2 supervises them upsampled to the input size
    return StepOutput(t, resize_bilinear(sam.multimasks, (size, size)), sam.ious, sam.object_score_logits)


def clip_forward(model: SAM2Base, images: torch.Tensor, masks: torch.Tensor, plan: PromptPlan,
                 generator: torch.Generator, prob_click_from_gt: float = 0.1,
                 click_centre_prob: float = 0.0) -> list[StepOutput]:
    """Run the model over a clip and return every supervised prediction.

    Args:
        images: (T, 3, S, S) normalised frames.
        masks: (O, T, S, S) bool ground truth per object.
        plan: prompts for this clip (see :func:`medsam2.training.prompts.plan_prompts`).
        generator: source of all randomness (box noise, clicks).
        click_centre_prob: chance that a correction click goes to the centre of the largest error
            region instead of a random error pixel (see ``sample_error_clicks``).
        prob_click_from_gt: chance that a correction click ignores the prediction and is drawn
            from the object itself (SAM2 does this 10% of the time).
    """
    num_frames = images.shape[0]
    num_obj = masks.shape[0]
    size = images.shape[-1]
    device = images.device
    feats = model.encode_image(images)
    cond_out: dict[int, TrackOutput] = {}
    non_cond_out: dict[int, TrackOutput] = {}
    cond = set(plan.cond_frames)
    correct = set(plan.correct_frames)
    first = plan.cond_frames[0]
    order = (list(plan.cond_frames) + [t for t in range(first + 1, num_frames) if t not in cond]
             + [t for t in range(first - 1, -1, -1) if t not in cond])
    steps: list[StepOutput] = []
    for t in order:
        f_t = _frame_features(feats, t, num_obj)
        gt = masks[:, t]
        is_cond = t in cond
        points: PointInputs | None = None
        if is_cond and plan.use_mask:
            # a mask prompt is copied to the output: nothing to supervise on this frame
            sam = model.mask_as_output(f_t.vision, f_t.high_res, gt[:, None].float())
            pix = None
        else:
            if is_cond:
                coords, labels = noisy_box_points(gt.cpu(), generator)
                points = PointInputs(coords.to(device), labels.to(device))
            pix = model.memory_conditioned_features(t, is_cond, f_t, cond_out, non_cond_out, num_frames,
                                                    reverse=t < first)
            multimask = model.use_multimask(is_cond, points)
            prev_mask = None if is_cond else model.previous_mask_prompt(t, cond_out, non_cond_out, t < first)
            if prev_mask is not None:
                prev_mask = prev_mask.detach()
            sam = model.forward_sam_heads(pix, points, prev_mask, f_t.high_res, multimask)
            steps.append(_supervised(t, sam, size))
        if t in correct and pix is not None:
            for _ in range(plan.num_corrections):
                if torch.rand(1, generator=generator).item() < prob_click_from_gt:
                    pred = None
                else:
                    pred = (sam.high_res_masks[:, 0] > 0).detach().cpu()
                coords, labels = sample_error_clicks(gt.cpu(), pred, generator, click_centre_prob)
                points = _cat_points(points, coords.to(device), labels.to(device))
                sam = model.forward_sam_heads(pix, points, sam.low_res_masks, f_t.high_res,
                                              model.use_multimask(is_cond, points))
                steps.append(_supervised(t, sam, size))
            is_cond = True  # a clicked frame conditions later frames like a prompted one
        out = TrackOutput(pred_masks=sam.low_res_masks, obj_ptr=sam.obj_ptr,
                          object_score_logits=sam.object_score_logits, ious=sam.best_iou,
                          pred_masks_high_res=sam.high_res_masks)
        out.maskmem_features, out.maskmem_pos_enc = model.encode_memory(
            f_t, sam.high_res_masks, sam.object_score_logits, points is not None)
        (cond_out if is_cond else non_cond_out)[t] = out
    return steps
