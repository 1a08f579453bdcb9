"""Correction-click evaluation: does a click on a propagated slice fix that slice?

Protocol, per object of every case (the held-out protocol of :mod:`medsam2.training.evaluate`
first): box from the ground truth on the key slice, propagate both ways. Then two independent
trials on that tracked session, each started from the same propagated state:

- positive: on the *worst* slice (lowest Dice among slices where the object covers at least
  ``min_object_px`` pixels and a connected missed region has at least ``min_region_px`` pixels: a
  smaller miss is no place for a click), one positive click at the centre (the pixel
  farthest from the edge) of the largest missed connected region. Success: the slice's Dice rises
  and the mask covers no more pixels of other objects than before (it did not jump);
- negative: on the slice with the largest wrongly included connected region (at least
  ``min_region_px`` pixels), one negative click at its centre. Success: at least ``removed_share``
  of that region leaves the mask and the slice's Dice does not fall.

The click goes through :meth:`medsam2.predictor.VolumePredictor.add_prompt` on the tracked frame,
which feeds the frame's tracked mask logits with the click, as the reference SAM2 video predictor
does. After each click the session re-propagates from the clicked slice both ways; the volume
Dice before and after is recorded too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from medsam2.training.data import Case
from medsam2.training.evaluate import clear_inference_caches, key_slice_box
from medsam2.training.metrics import dice_score

__all__ = ["ClickReport", "ClickTrial", "click_at_centre", "evaluate_clicks"]


@dataclass
class ClickTrial:
    case: str
    object_id: int
    kind: str  # "positive" | "negative"
    frame: int
    click: tuple[int, int]  # (x, y)
    region_px: int  # size of the error region clicked
    region_left_px: int  # of it still wrong after the click
    dice_before: float  # slice Dice
    dice_after: float
    other_before: int  # mask pixels on other objects of the case
    other_after: int
    volume_dice_before: float
    volume_dice_after: float  # after re-propagating from the clicked slice
    success: bool


@dataclass
class ClickReport:
    trials: list[ClickTrial] = field(default_factory=list)

    def of(self, kind: str) -> list[ClickTrial]:
        return [t for t in self.trials if t.kind == kind]

    def success_rate(self, kind: str) -> float:
        sel = self.of(kind)
        return float(np.mean([t.success for t in sel])) if sel else float("nan")

    def jumps(self) -> int:
        """Trials whose mask spread onto another object."""
        return sum(t.other_after > t.other_before for t in self.trials)

    def summary(self) -> dict:
        out: dict = {"jumps": self.jumps()}
        for kind in ("positive", "negative"):
            sel = self.of(kind)
            out[kind] = {
                "trials": len(sel),
                "success_rate": self.success_rate(kind),
                "mean_slice_dice_before": float(np.mean([t.dice_before for t in sel])) if sel else None,
                "mean_slice_dice_after": float(np.mean([t.dice_after for t in sel])) if sel else None,
                "mean_volume_dice_before": float(np.mean([t.volume_dice_before for t in sel])) if sel else None,
                "mean_volume_dice_after": float(np.mean([t.volume_dice_after for t in sel])) if sel else None,
            }
        return out


def click_at_centre(region: np.ndarray) -> tuple[tuple[int, int], np.ndarray]:
    """((x, y), component): the largest 8-connected component of a 2D bool ``region`` and its pixel
    farthest from the component's edge (ties: the first in row order)."""
    labels, n = ndimage.label(region, structure=np.ones((3, 3), bool))
    if n == 0:
        raise ValueError("empty region")
    sizes = np.bincount(labels.ravel())[1:]
    comp = labels == int(np.argmax(sizes)) + 1
    dist = ndimage.distance_transform_edt(np.pad(comp, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return (int(x), int(y)), comp


def _largest_component_px(region: np.ndarray) -> int:
    labels, n = ndimage.label(region, structure=np.ones((3, 3), bool))
    return int(np.bincount(labels.ravel())[1:].max()) if n else 0


def _slice_dice(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    inter = (pred & gt).reshape(len(gt), -1).sum(1)
    total = pred.reshape(len(gt), -1).sum(1) + gt.reshape(len(gt), -1).sum(1)
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)


def _session(predictor, state, oid: int, key: int, box) -> np.ndarray:
    predictor.reset(state)
    predictor.add_prompt(state, frame_idx=key, obj_id=oid, box=box)
    return predictor.propagate_volume(state)[oid]


def _click_and_repropagate(predictor, state, oid: int, frame: int, key: int, box, xy, label: int,
                           volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slice mask after the click, volume after re-propagating from the clicked slice both ways)."""
    if frame == key:  # the key slice keeps its box, as the browser sends box and clicks together
        res = predictor.add_prompt(state, frame, oid, box=box, points=[xy], labels=[label])
    else:
        res = predictor.add_prompt(state, frame, oid, points=[xy], labels=[label])
    mask = np.asarray(res.masks[res.obj_ids.index(oid)], bool)
    after = volume.copy()
    for r in predictor.propagate(state, "both", start_frame=frame):
        after[r.frame_idx] = r.masks[r.obj_ids.index(oid)]
    return mask, after


def evaluate_clicks(model: torch.nn.Module, cases: Sequence[Case], device: str = "cpu", min_object_px: int = 20,
                    min_region_px: int = 6, removed_share: float = 0.8) -> ClickReport:
    """Run the positive and negative click trials (see module docstring) on every object of ``cases``."""
    from medsam2.predictor import VolumePredictor

    was_training = model.training
    report = ClickReport()
    try:
        predictor = VolumePredictor(model, device=device)  # type: ignore[arg-type]
        for idx, case in enumerate(cases):
            name = case.name or f"case{idx}"
            state = predictor.init_state(case.image, modality=case.modality, window=case.window)
            for oid in case.object_ids:
                gt = case.labels == oid
                others = (case.labels != 0) & ~gt
                key, box = key_slice_box(case.labels, oid)
                vol = _session(predictor, state, oid, key, box)
                vdice = dice_score(vol, gt)
                per_slice = _slice_dice(vol, gt)
                gt_px = gt.reshape(len(gt), -1).sum(1)
                missed = gt & ~vol
                cands = [z for z in range(len(gt))
                         if gt_px[z] >= min_object_px and _largest_component_px(missed[z]) >= min_region_px]
                if cands:
                    z = min(cands, key=lambda f: (per_slice[f], f))
                    xy, comp = click_at_centre(missed[z])
                    mask, after = _click_and_repropagate(predictor, state, oid, z, key, box, xy, 1, vol)
                    d_after = dice_score(mask, gt[z])
                    o_before, o_after = int((vol[z] & others[z]).sum()), int((mask & others[z]).sum())
                    report.trials.append(ClickTrial(
                        name, int(oid), "positive", z, xy, int(comp.sum()), int((comp & ~mask).sum()),
                        float(per_slice[z]), d_after, o_before, o_after, vdice, dice_score(after, gt),
                        success=d_after > per_slice[z] and o_after <= o_before))
                    vol = _session(predictor, state, oid, key, box)
                false = vol & ~gt
                sizes = [_largest_component_px(false[f]) for f in range(len(gt))]
                z = int(np.argmax(sizes))
                if sizes[z] >= min_region_px:
                    xy, comp = click_at_centre(false[z])
                    mask, after = _click_and_repropagate(predictor, state, oid, z, key, box, xy, 0, vol)
                    d_after = dice_score(mask, gt[z])
                    left = int((comp & mask).sum())
                    report.trials.append(ClickTrial(
                        name, int(oid), "negative", z, xy, int(comp.sum()), left, float(per_slice[z]), d_after,
                        int((vol[z] & others[z]).sum()), int((mask & others[z]).sum()), vdice,
                        dice_score(after, gt),
                        success=left <= (1 - removed_share) * comp.sum() and d_after >= per_slice[z]))
    finally:
        clear_inference_caches(model)
        model.train(was_training)
    return report
