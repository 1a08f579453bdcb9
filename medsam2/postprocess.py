"""Mask clean-up, overlap metrics and box helpers (numpy + scipy; no torch).

Masks are boolean (or 0/1) arrays: ``(H, W)`` slices or ``(D, H, W)`` volumes. Boxes follow the SAM
prompt convention ``(x0, y0, x1, y1)``: x is the column, y the row, both corners inclusive pixel indices.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "bounding_box",
    "bounding_box_3d",
    "dice",
    "fill_holes_per_slice",
    "iou",
    "key_slice",
    "largest_component_3d",
    "remove_small_components",
    "slice_boxes",
]


def _as_bool(mask: np.ndarray, ndim: int | tuple[int, ...], name: str = "mask") -> np.ndarray:
    arr = np.asarray(mask)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def largest_component_3d(mask: np.ndarray) -> np.ndarray:
    """Keep only the largest connected component of a ``(D, H, W)`` mask (26-connectivity).

    Returns a new bool array of the same shape; an empty mask stays empty. Ties keep the component
    with the lowest label (first in raster order), so the result is deterministic.
    """
    m = _as_bool(mask, 3)
    labels, n = ndimage.label(m, structure=np.ones((3, 3, 3), dtype=bool))
    if n <= 1:
        return m.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def remove_small_components(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drop connected components (full connectivity) with fewer than ``min_size`` pixels/voxels."""
    m = _as_bool(mask, (2, 3))
    labels, n = ndimage.label(m, structure=np.ones((3,) * m.ndim, dtype=bool))
    if n == 0:
        return m.copy()
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]


def fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes in every axial slice of a ``(D, H, W)`` mask (or in a single ``(H, W)`` mask)."""
    m = _as_bool(mask, (2, 3))
    if m.ndim == 2:
        return ndimage.binary_fill_holes(m)
    return np.stack([ndimage.binary_fill_holes(s) for s in m]) if m.shape[0] else m.copy()


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient ``2|A∩B| / (|A|+|B|)`` of two masks of the same shape; 1.0 when both are empty."""
    a, b = np.asarray(a).astype(bool, copy=False), np.asarray(b).astype(bool, copy=False)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks of the same shape; 1.0 when both are empty."""
    a, b = np.asarray(a).astype(bool, copy=False), np.asarray(b).astype(bool, copy=False)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = int(np.logical_or(a, b).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(a, b).sum()) / union


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box ``(x0, y0, x1, y1)`` (inclusive pixel indices) of a 2D ``(H, W)`` mask; None if empty."""
    m = _as_bool(mask, 2)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def bounding_box_3d(mask: np.ndarray) -> tuple[int, int, int, int, int, int] | None:
    """Tight box of a ``(D, H, W)`` mask as ``(z0, y0, x0, z1, y1, x1)`` (array order, inclusive);
    None if empty."""
    m = _as_bool(mask, 3)
    if not m.any():
        return None
    z = np.flatnonzero(m.any(axis=(1, 2)))
    y = np.flatnonzero(m.any(axis=(0, 2)))
    x = np.flatnonzero(m.any(axis=(0, 1)))
    return int(z[0]), int(y[0]), int(x[0]), int(z[-1]), int(y[-1]), int(x[-1])


def slice_boxes(mask: np.ndarray) -> dict[int, tuple[int, int, int, int]]:
    """Per-slice boxes of a ``(D, H, W)`` mask: ``{slice index: (x0, y0, x1, y1)}`` for non-empty slices."""
    m = _as_bool(mask, 3)
    out: dict[int, tuple[int, int, int, int]] = {}
    for k in np.flatnonzero(m.any(axis=(1, 2))):
        box = bounding_box(m[k])
        assert box is not None  # the slice is non-empty by construction
        out[int(k)] = box
    return out


def key_slice(mask: np.ndarray) -> int | None:
    """Index of the slice with the largest area in a ``(D, H, W)`` mask (first on ties); None if empty."""
    m = _as_bool(mask, 3)
    areas = m.sum(axis=(1, 2))
    if not areas.any():
        return None
    return int(np.argmax(areas))
