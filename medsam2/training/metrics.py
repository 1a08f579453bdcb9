"""Segmentation metrics on 3D masks: Dice and normalised surface distance (NSD).

Both take boolean arrays of the same shape (Z, Y, X) and voxel spacing in mm ordered (z, y, x).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def dice_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice overlap 2|A∩B| / (|A|+|B|); two empty masks agree perfectly (1.0)."""
    p = np.asarray(pred, dtype=bool)
    g = np.asarray(gt, dtype=bool)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: pred {p.shape} vs gt {g.shape}")
    total = int(p.sum()) + int(g.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((p & g).sum()) / total


def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels: in the mask with at least one face-neighbour outside it (or at the edge)."""
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1),
                                    border_value=0)
    return mask & ~eroded


def normalized_surface_distance(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float],
                                tolerance_mm: float = 2.0) -> float:
    """Fraction of both surfaces lying within ``tolerance_mm`` of the other surface.

    NSD = (|{s in dP : d(s, dG) <= tau}| + |{s in dG : d(s, dP) <= tau}|) / (|dP| + |dG|), with
    Euclidean distances in mm computed by an exact distance transform that honours ``spacing``.
    Both empty -> 1.0; exactly one empty -> 0.0.
    """
    p = np.asarray(pred, dtype=bool)
    g = np.asarray(gt, dtype=bool)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: pred {p.shape} vs gt {g.shape}")
    if len(spacing) != p.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not match {p.ndim}D masks")
    if tolerance_mm < 0:
        raise ValueError("tolerance_mm must be >= 0")
    if not p.any() and not g.any():
        return 1.0
    if not p.any() or not g.any():
        return 0.0
    # crop to the joint bounding box plus a margin wider than the tolerance: distances beyond
    # it do not matter and the transform gets much cheaper on big volumes
    both = p | g
    margin = [int(np.ceil(tolerance_mm / s)) + 2 for s in spacing]
    sl = []
    for ax in range(p.ndim):
        idx = np.flatnonzero(both.any(axis=tuple(a for a in range(p.ndim) if a != ax)))
        sl.append(slice(max(0, idx[0] - margin[ax]), idx[-1] + margin[ax] + 1))
    p, g = p[tuple(sl)], g[tuple(sl)]
    sp, sg = _surface(p), _surface(g)
    dist_to_g = ndimage.distance_transform_edt(~sg, sampling=spacing)
    dist_to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    close = int((dist_to_g[sp] <= tolerance_mm).sum()) + int((dist_to_p[sg] <= tolerance_mm).sum())
    return close / float(sp.sum() + sg.sum())
