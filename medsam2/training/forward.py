"""Training forward pass over one clip, the way SAM2 trains its video model.

Frames are visited conditioning frames first, then the rest in clip order. A conditioning
frame is prompted with its ground-truth mask or with a noisy box; frames chosen for correction
then receive simulated clicks one at a time, each drawn from the current error region and fed
back together with the previous low-resolution logits. Every frame writes a memory (from its
*predicted* mask) that later frames attend to. All objects of the clip run as one batch.

The model is a SAM2-style video model exposing ``forward_image``,
``_prepare_backbone_features``, ``_track_step``, ``_forward_sam_heads``, ``_use_multimask``
and ``_encode_memory_in_output`` with the reference SAM2 semantics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medsam2.training.prompts import PromptPlan, noisy_box_points, sample_error_clicks


@dataclass
class StepOutput:
    """One supervised prediction.

    Attributes:
        frame: index in the clip.
        multimasks: (O, M, S, S) mask logits at input resolution.
        ious: (O, M) predicted IoU.
        obj_logits: (O, 1) object-score logits.
    """

    frame: int
    multimasks: torch.Tensor
    ious: torch.Tensor
    obj_logits: torch.Tensor


def _cat_points(prev: dict | None, coords: torch.Tensor, labels: torch.Tensor) -> dict:
    if prev is None:
        return {"point_coords": coords, "point_labels": labels}
    return {"point_coords": torch.cat([prev["point_coords"], coords], dim=1),
            "point_labels": torch.cat([prev["point_labels"], labels], dim=1)}


def clip_forward(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, plan: PromptPlan,
                 generator: torch.Generator, prob_click_from_gt: float = 0.1) -> list[StepOutput]:
    """Run the model over a clip and return every supervised prediction.

    Args:
        images: (T, 3, S, S) normalised frames.
        masks: (O, T, S, S) bool ground truth per object.
        plan: prompts for this clip (see :func:`medsam2.training.prompts.plan_prompts`).
        generator: source of all randomness (box noise, clicks).
        prob_click_from_gt: chance that a correction click ignores the prediction and is drawn
            from the object itself (SAM2 does this 10% of the time).
    """
    num_frames = images.shape[0]
    num_obj = masks.shape[0]
    device = images.device
    backbone_out = model.forward_image(images)
    _, feats, pos, sizes = model._prepare_backbone_features(backbone_out)
    output_dict: dict[str, dict[int, dict]] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    cond = set(plan.cond_frames)
    correct = set(plan.correct_frames)
    order = list(plan.cond_frames) + [t for t in range(num_frames) if t not in cond]
    steps: list[StepOutput] = []
    for t in order:
        # (HW, T, C) -> this frame's features repeated for every object: (HW, O, C)
        f_t = [x[:, t : t + 1].expand(-1, num_obj, -1) for x in feats]
        p_t = [x[:, t : t + 1].expand(-1, num_obj, -1) for x in pos]
        gt = masks[:, t]
        is_cond = t in cond
        points = None
        mask_in = None
        if is_cond and plan.use_mask:
            mask_in = gt[:, None].float()
        elif is_cond:
            coords, labels = noisy_box_points(gt.cpu(), generator)
            points = {"point_coords": coords.to(device), "point_labels": labels.to(device)}
        current, sam_out, high_res, pix_feat = model._track_step(
            t, is_cond, f_t, p_t, sizes, points, mask_in, output_dict, num_frames, False, None
        )
        multi, ious, low, high, obj_ptr, obj_logits = (sam_out[1], sam_out[2], sam_out[3], sam_out[4],
                                                      sam_out[5], sam_out[6])
        if mask_in is None:  # a mask prompt is copied to the output: nothing to learn there
            steps.append(StepOutput(t, multi, ious, obj_logits))
        if t in correct:
            for _ in range(plan.num_corrections):
                if torch.rand(1, generator=generator).item() < prob_click_from_gt:
                    pred = None
                else:
                    pred = (high[:, 0] > 0).detach().cpu()
                coords, labels = sample_error_clicks(gt.cpu(), pred, generator)
                points = _cat_points(points, coords.to(device), labels.to(device))
                multimask = model._use_multimask(is_cond, points)
                sam_out = model._forward_sam_heads(pix_feat, points, low, high_res, multimask)
                multi, ious, low, high, obj_ptr, obj_logits = (sam_out[1], sam_out[2], sam_out[3],
                                                              sam_out[4], sam_out[5], sam_out[6])
                steps.append(StepOutput(t, multi, ious, obj_logits))
            is_cond = True  # a clicked frame conditions later frames like a prompted one
            current["point_inputs"] = points
        current["pred_masks"] = low
        current["pred_masks_high_res"] = high
        current["obj_ptr"] = obj_ptr
        model._encode_memory_in_output(f_t, sizes, points, True, high, obj_logits, current)
        output_dict["cond_frame_outputs" if is_cond else "non_cond_frame_outputs"][t] = current
    return steps
