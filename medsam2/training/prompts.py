"""Prompt simulation for training: boxes, mask prompts and error-driven correction clicks.

All coordinates are pixel coordinates in the model input frame (size S x S), ordered (x, y).
Box prompts are encoded the SAM way, as two points labelled 2 (top-left) and 3 (bottom-right).
Click labels: 1 = positive (add), 0 = negative (remove).

Every random draw goes through an explicit ``torch.Generator`` so that a clip's prompts are a
pure function of the run seed and the step, which is what makes a resumed run bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

BOX_TOP_LEFT = 2
BOX_BOTTOM_RIGHT = 3


def mask_to_box(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes around boolean masks.

    Args:
        masks: (B, H, W) bool.
    Returns:
        (B, 4) float boxes (x0, y0, x1, y1) in pixels, inclusive corners; an empty mask gives
        the whole image (the decoder then has to rely on other cues, and callers avoid it).
    """
    b, h, w = masks.shape
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    any_row = masks.any(dim=2)  # (B, H)
    any_col = masks.any(dim=1)  # (B, W)
    big = torch.tensor(10**9, device=masks.device)
    y0 = torch.where(any_row, ys, big).amin(dim=1)
    y1 = torch.where(any_row, ys, -big).amax(dim=1)
    x0 = torch.where(any_col, xs, big).amin(dim=1)
    x1 = torch.where(any_col, xs, -big).amax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    empty = ~masks.flatten(1).any(dim=1)
    full = torch.tensor([0.0, 0.0, w - 1.0, h - 1.0], device=masks.device)
    return torch.where(empty[:, None], full, boxes)


def noisy_box_points(
    masks: torch.Tensor,
    generator: torch.Generator,
    noise: float = 0.1,
    noise_bound_px: float = 20.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Box prompt from masks with corner jitter, as a (coords, labels) point prompt.

    Each corner coordinate moves uniformly by up to ``noise`` of the box side, capped at
    ``noise_bound_px`` pixels, then is clamped to the image.

    Args:
        masks: (B, H, W) bool.
    Returns:
        coords (B, 2, 2) float (x, y), labels (B, 2) int32 filled with [2, 3].
    """
    b, h, w = masks.shape
    boxes = mask_to_box(masks)
    if noise > 0:
        bw = boxes[:, 2] - boxes[:, 0]
        bh = boxes[:, 3] - boxes[:, 1]
        max_dx = torch.clamp(bw * noise, max=noise_bound_px)
        max_dy = torch.clamp(bh * noise, max=noise_bound_px)
        u = torch.rand(b, 4, generator=generator) * 2 - 1
        boxes = boxes + u * torch.stack([max_dx, max_dy, max_dx, max_dy], dim=1)
        bounds = torch.tensor([w - 1.0, h - 1.0, w - 1.0, h - 1.0])
        boxes = torch.minimum(torch.clamp(boxes, min=0.0), bounds)
    coords = boxes.reshape(b, 2, 2)
    labels = torch.tensor([BOX_TOP_LEFT, BOX_BOTTOM_RIGHT], dtype=torch.int32).repeat(b, 1)
    return coords, labels


def sample_error_clicks(
    gt: torch.Tensor, pred: torch.Tensor | None, generator: torch.Generator, centre_prob: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective click per mask, drawn uniformly from the error region.

    A pixel missed by the prediction (false negative) yields a positive click; a pixel wrongly
    included (false positive) a negative one. Where the prediction is already perfect, a
    negative click is drawn from the background (as SAM2's trainer does), or a positive one
    from the object when there is no background.

    With probability ``centre_prob`` (one draw per call) each click goes instead to the centre of
    the largest error region (its pixel farthest from the region's edge), where an annotator clicks.

    Args:
        gt: (B, H, W) bool ground truth.
        pred: (B, H, W) bool prediction, or None for "nothing predicted yet".
    Returns:
        coords (B, 1, 2) float (x, y), labels (B, 1) int32.
    """
    if pred is None:
        pred = torch.zeros_like(gt)
    b, h, w = gt.shape
    fn = gt & ~pred
    fp = pred & ~gt
    errors = fn | fp
    no_error = ~errors.flatten(1).any(dim=1)
    candidates = torch.where(no_error[:, None, None], ~gt, errors)
    # all-foreground masks with a perfect prediction leave no background to click on
    nothing = ~candidates.flatten(1).any(dim=1)
    candidates = torch.where(nothing[:, None, None], gt, candidates)
    scores = torch.rand(b, h * w, generator=generator).to(gt.device) * candidates.flatten(1)
    if centre_prob > 0 and torch.rand(1, generator=generator).item() < centre_prob:
        scores = _centre_scores(candidates).to(gt.device)
    idx = scores.argmax(dim=1)
    xs = (idx % w).float()
    ys = torch.div(idx, w, rounding_mode="floor").float()
    labels = gt.flatten(1).gather(1, idx[:, None]).to(torch.int32)
    return torch.stack([xs, ys], dim=1)[:, None, :], labels


def _centre_scores(regions: torch.Tensor) -> torch.Tensor:
    """(B, H*W) scores peaking at the centre of each mask's largest 8-connected region."""
    import numpy as np
    from scipy import ndimage

    out = np.zeros((regions.shape[0], regions.shape[1] * regions.shape[2]), dtype=np.float32)
    for i, region in enumerate(regions.cpu().numpy()):
        labels, n = ndimage.label(region, structure=np.ones((3, 3), bool))
        if n == 0:
            continue
        largest = labels == int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
        out[i] = ndimage.distance_transform_edt(np.pad(largest, 1))[1:-1, 1:-1].ravel()
    return torch.from_numpy(out)


@dataclass
class PromptPlan:
    """Which frames of a clip get which prompt, drawn once per clip.

    Attributes:
        cond_frames: initial conditioning frames (frame 0 always first).
        use_mask: True -> the ground-truth mask is given on the conditioning frames,
            False -> a noisy box is given instead.
        correct_frames: frames that receive iterative correction clicks (box mode only);
            they become conditioning frames once clicked.
        num_corrections: number of correction clicks per correcting frame.
    """

    cond_frames: list[int]
    use_mask: bool
    correct_frames: list[int] = field(default_factory=list)
    num_corrections: int = 0


def plan_prompts(
    num_frames: int,
    frames_with_object: list[int],
    generator: torch.Generator,
    prob_mask: float = 0.5,
    max_cond_frames: int = 2,
    max_correct_frames: int = 2,
    num_corrections: int = 7,
    first: int = 0,
) -> PromptPlan:
    """Draw a prompt plan for one clip, following the SAM2 training recipe.

    1 to ``max_cond_frames`` initial conditioning frames (frame 0 plus random frames in which
    every object is visible, so a box is well defined), half of the clips prompted with the
    mask and half with a box; in box mode 1 to ``max_correct_frames`` frames (always including
    frame 0) get ``num_corrections`` simulated correction clicks each. ``first`` replaces frame 0
    as the first conditioning frame when the clip is tracked both ways from its middle (see
    :func:`medsam2.training.forward.clip_forward`).
    """

    def randint(lo: int, hi: int) -> int:  # inclusive bounds
        return int(torch.randint(lo, hi + 1, (1,), generator=generator).item())

    n_cond = randint(1, max(1, max_cond_frames))
    others = [f for f in frames_with_object if f != first]
    cond = [first]
    if n_cond > 1 and others:
        perm = torch.randperm(len(others), generator=generator).tolist()
        cond += sorted(others[i] for i in perm[: n_cond - 1])
    # a lone frame prompted with its own mask would leave nothing to learn
    use_mask = bool(torch.rand(1, generator=generator).item() < prob_mask) and num_frames > 1
    correct: list[int] = []
    if not use_mask and num_corrections > 0 and max_correct_frames > 0:
        n_corr = randint(1, max_correct_frames)
        rest = [f for f in range(num_frames) if f != first]
        perm = torch.randperm(len(rest), generator=generator).tolist()
        correct = [first] + sorted(rest[i] for i in perm[: n_corr - 1])
    return PromptPlan(cond_frames=cond, use_mask=use_mask, correct_frames=correct,
                      num_corrections=num_corrections if correct else 0)
