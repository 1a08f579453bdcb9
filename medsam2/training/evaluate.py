"""Held-out evaluation: box prompt on the key slice, propagation both ways, Dice and NSD.

The protocol is the same for any model, so two checkpoints can be compared on equal terms:
for every object of every case, the tight box of its ground truth on its *key slice* (the slice
where it is largest) is given to :class:`medsam2.predictor.VolumePredictor`, which propagates
forward and backward through the whole volume; the 3D prediction is scored against the ground
truth with Dice and NSD at ``tolerance_mm`` using the case's voxel spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from medsam2.training.data import Case
from medsam2.training.metrics import dice_score, normalized_surface_distance


@dataclass
class ObjectScore:
    case: str
    object_id: int
    key_slice: int
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) inclusive pixels on the key slice
    dice: float
    nsd: float


@dataclass
class EvalResult:
    """Per-object scores plus their means (each object counts once)."""

    objects: list[ObjectScore] = field(default_factory=list)
    tolerance_mm: float = 2.0

    @property
    def mean_dice(self) -> float:
        return float(np.mean([o.dice for o in self.objects])) if self.objects else float("nan")

    @property
    def mean_nsd(self) -> float:
        return float(np.mean([o.nsd for o in self.objects])) if self.objects else float("nan")

    def per_case(self) -> dict[str, dict[str, float]]:
        """Mean Dice/NSD of each case's objects, keyed by case name."""
        out: dict[str, dict[str, float]] = {}
        for name in dict.fromkeys(o.case for o in self.objects):
            sel = [o for o in self.objects if o.case == name]
            out[name] = {"dice": float(np.mean([o.dice for o in sel])),
                         "nsd": float(np.mean([o.nsd for o in sel])), "objects": float(len(sel))}
        return out

    def as_dict(self) -> dict:
        return {"mean_dice": self.mean_dice, "mean_nsd": self.mean_nsd, "tolerance_mm": self.tolerance_mm,
                "num_objects": len(self.objects), "per_case": self.per_case(),
                "objects": [vars(o) for o in self.objects]}


def key_slice_box(labels: np.ndarray, object_id: int) -> tuple[int, tuple[int, int, int, int]]:
    """Key slice (largest area) of an object in a (Z, H, W) label map and its tight (x0, y0, x1, y1)."""
    m = labels == object_id
    areas = m.reshape(m.shape[0], -1).sum(axis=1)
    if not areas.any():
        raise ValueError(f"object {object_id} is not in the label map")
    k = int(np.argmax(areas))
    ys, xs = np.nonzero(m[k])
    return k, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))


_CACHE_ATTRS = ("_rope", "_cache", "_pos_cache", "_dense_pe")


def clear_inference_caches(model: torch.nn.Module) -> None:
    """Drop the modules' memoised constants (RoPE tables, sine position encodings, ...).

    Entries created under ``torch.inference_mode`` (the predictor's mode) are inference tensors
    that autograd refuses to save, so a model that was evaluated must forget them before it
    trains again; they are rebuilt on the next forward.
    """
    for module in model.modules():
        for attr in _CACHE_ATTRS:
            cache = getattr(module, attr, None)
            if isinstance(cache, dict):
                cache.clear()


def evaluate(model: torch.nn.Module, cases: Sequence[Case], tolerance_mm: float = 2.0,
             device: str = "cpu", show_progress: bool = False) -> EvalResult:
    """Score ``model`` on ``cases`` (see module docstring); the model's train/eval mode is restored."""
    from medsam2.predictor import VolumePredictor

    was_training = model.training
    result = EvalResult(tolerance_mm=tolerance_mm)
    try:
        predictor = VolumePredictor(model, device=device)  # type: ignore[arg-type]
        for idx, case in enumerate(tqdm(cases, desc="evaluate", disable=not show_progress)):
            name = case.name or f"case{idx}"
            if not case.object_ids:
                continue
            state = predictor.init_state(case.image, modality=case.modality, window=case.window)
            for oid in case.object_ids:
                # one object at a time, so each propagates from its own key slice; reset keeps
                # the cached frame features, so every slice is still encoded only once per case
                predictor.reset(state)
                k, box = key_slice_box(case.labels, oid)
                predictor.add_prompt(state, frame_idx=k, obj_id=oid, box=box)
                pred = predictor.propagate_volume(state)[oid]
                gt = case.labels == oid
                result.objects.append(ObjectScore(
                    case=name, object_id=int(oid), key_slice=k, box=box, dice=dice_score(pred, gt),
                    nsd=normalized_surface_distance(pred, gt, case.spacing, tolerance_mm)))
    finally:
        clear_inference_caches(model)
        model.train(was_training)
    return result
