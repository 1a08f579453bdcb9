"""Which slices of a propagated mask are probably wrong: the confidence strip's flags (numpy only).

A slice is *suspect* when the model's own scores doubt it or when it does not fit the track:

- ``low_iou``: the predicted IoU of a slice with a mask is below ``iou``;
- ``unsure``: the object-presence logit is within ``score_margin`` of 0 (present or not, a coin toss);
- ``area_jump``: inside the track, its area differs from the mean of its two neighbours' by more
  than ``area_change`` of the larger (a lesion's cross-section changes smoothly from slice to slice);
- ``shift``: its centroid lies more than ``shift`` times the equivalent radius from the neighbours';
- ``overlap``: inside the track, its Dice with both neighbouring masks is below ``overlap``;
- ``lost``: an empty slice next to a mask of at least ``lost_area`` pixels that shrank by less than
  ``lost_taper`` on its way there (an object that ends tapers off; one that was dropped does not),
  or an empty slice between two masked slices (a gap); ``lost_run`` slices past such an end.

The defaults are the thresholds ``benchmarks/bench_confidence.py`` chose on synthetic CT lesions with
ground truth (calibration phantoms seed 20000, shipped bootstrap model, fast mode): for slices whose
Dice is below 0.8, precision 0.32 / recall 0.91 there and precision 0.26 / recall 0.83 on the held-out
phantoms (seed 10000; 77 such slices, 250 flagged). The goal, recall >= 0.9 at precision >= 0.5, is
not reached yet: most false alarms are lesion ends and small cross-sections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Thresholds", "frame_flags"]


@dataclass(frozen=True)
class Thresholds:
    iou: float = 0.8
    score_margin: float = 2.0
    area_change: float = 0.5
    shift: float = 0.25
    overlap: float = 0.6
    lost_area: int = 30
    lost_taper: float = 0.5
    lost_run: int = 3


def _centroids(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, h, w = masks.shape
    area = masks.reshape(t, -1).sum(1).astype(np.float64)
    ys = np.arange(h, dtype=np.float64)
    xs = np.arange(w, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (masks.sum(2) * ys).sum(1) / area
        cx = (masks.sum(1) * xs).sum(1) / area
    return area, np.stack([cy, cx], 1)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def frame_flags(
    masks: np.ndarray,
    object_scores: np.ndarray | None = None,
    ious: np.ndarray | None = None,
    th: Thresholds = Thresholds(),
) -> list[list[str]]:
    """Reasons per slice (an empty list: nothing against it) for a bool ``(T, H, W)`` mask track;
    ``object_scores`` / ``ious`` ``(T,)`` are the model's per-slice outputs (NaN where not computed)."""
    m = np.asarray(masks, dtype=bool)
    t = m.shape[0]
    nan = np.full(t, np.nan)
    scores = nan if object_scores is None else np.asarray(object_scores, dtype=np.float64)
    iou = nan if ious is None else np.asarray(ious, dtype=np.float64)
    area, cen = _centroids(m)
    has = area > 0
    masked = np.flatnonzero(has)
    first, last = (int(masked[0]), int(masked[-1])) if masked.size else (t, -1)
    out: list[list[str]] = [[] for _ in range(t)]
    for f in range(t):
        why = out[f]
        if not np.isnan(scores[f]) and abs(scores[f]) < th.score_margin:
            why.append("unsure")
        nbrs = [n for n in (f - 1, f + 1) if 0 <= n < t]
        if has[f]:
            if not np.isnan(iou[f]) and iou[f] < th.iou:
                why.append("low_iou")
            near = [n for n in nbrs if has[n]]
            if len(near) == 2:  # inside the track (its ends shrink fast: that is how objects end)
                mean_area = float(np.mean(area[near]))
                if abs(area[f] - mean_area) > th.area_change * max(area[f], mean_area):
                    why.append("area_jump")
                if max(_dice(m[f], m[n]) for n in near) < th.overlap:
                    why.append("overlap")
            if near:
                radius = float(np.sqrt(max(area[f], 1.0) / np.pi))
                shift = float(np.linalg.norm(cen[f] - np.mean(cen[near], axis=0)))
                if shift > th.shift * radius:
                    why.append("shift")
            elif len(nbrs):
                why.append("isolated")
        elif first < f < last:
            why.append("lost")  # a gap inside the track
    # dropped: the track ends from a big cross-section that was not tapering off; the next
    # ``lost_run`` empty slices that way are suspect too (the object is probably still there)
    for end, step in ((last, 1), (first, -1)):
        if not masked.size:
            break
        before = end - step
        big = area[end] >= th.lost_area
        tapering = 0 <= before < t and area[before] > 0 and area[end] < th.lost_taper * area[before]
        if big and not tapering:
            for k in range(1, th.lost_run + 1):
                f = end + step * k
                if 0 <= f < t and not has[f]:
                    out[f].append("lost")
    return out
