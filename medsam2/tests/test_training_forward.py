"""The training forward pass: the order frames are tracked in and what gets supervised."""

import torch

from medsam2.build import build_model
from medsam2.training.forward import clip_forward
from medsam2.training.prompts import PromptPlan


def _clip(frames: int = 6, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(frames, 3, size, size, generator=g)
    masks = torch.zeros(1, frames, size, size, dtype=torch.bool)
    masks[0, :, 20:40, 24:44] = True
    return images, masks


def test_a_clip_prompted_in_its_middle_is_tracked_forward_then_backward_like_the_predictor():
    torch.manual_seed(0)
    model = build_model("test_tiny").eval()
    images, masks = _clip(size=model.image_size)
    plan = PromptPlan(cond_frames=[2], use_mask=False)
    with torch.no_grad():
        steps = clip_forward(model, images, masks, plan, torch.Generator().manual_seed(1))
    assert [s.frame for s in steps] == [2, 3, 4, 5, 1, 0]


def test_a_clip_prompted_on_its_first_frame_is_tracked_in_clip_order():
    torch.manual_seed(0)
    model = build_model("test_tiny").eval()
    images, masks = _clip(size=model.image_size)
    plan = PromptPlan(cond_frames=[0, 4], use_mask=False)
    with torch.no_grad():
        steps = clip_forward(model, images, masks, plan, torch.Generator().manual_seed(1))
    assert [s.frame for s in steps] == [0, 4, 1, 2, 3, 5]
