"""The model's first proposal against the final mask, and who made each slice (numpy + scipy only).

Revisions are compared inside the union of their bounding boxes, never as whole volumes. Axis order
is the case's canonical (frame, y, x); `spacing` is (frame, y, x) in mm.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from annotation_app.lib.maskcodec import decode_crop


@dataclass(frozen=True)
class Window:
    lo: tuple[int, int, int]
    hi: tuple[int, int, int]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.hi[0] - self.lo[0], self.hi[1] - self.lo[1], self.hi[2] - self.lo[2])

    @classmethod
    def around(cls, revisions: Sequence) -> "Window | None":
        """The union of the revisions' bounding boxes (None when every mask is empty)."""
        boxes = [r.bbox for r in revisions if r is not None and r.voxel_count]
        if not boxes:
            return None
        lo = tuple(min(b[i] for b in boxes) for i in range(3))
        hi = tuple(max(b[i + 3] for b in boxes) for i in range(3))
        return cls(lo, hi)  # type: ignore[arg-type]

    def crop(self, revision) -> np.ndarray:
        """The revision's mask inside this window (all False for None or an empty mask)."""
        out = np.zeros(self.shape, dtype=bool)
        if revision is None or not revision.voxel_count:
            return out
        z0, y0, x0, z1, y1, x1 = revision.bbox
        (a, b, c) = self.lo
        out[z0 - a : z1 - a, y0 - b : y1 - b, x0 - c : x1 - c] = decode_crop(bytes(revision.data), revision.bbox)
        return out


@dataclass(frozen=True)
class Comparison:
    voxels_changed: int
    dice: float
    hd95_mm: float | None
    #: frames where the final mask differs from the proposal
    corrected_frames: list[int]
    #: frames with mask in the final mask / in either mask
    final_frames: list[int]
    union_frames: list[int]


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    sa, sb = _surface(a), _surface(b)
    to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    to_a = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return np.concatenate([to_b, to_a])


def hd95(a: np.ndarray, b: np.ndarray, spacing: Sequence[float], per_frame: bool = False) -> float | None:
    """95th percentile of the surface distances both ways, pooled (as medpy's hd95), in mm.

    per_frame (videos): distances within each frame that both masks cover, pooled over frames, since
    the time axis has no length. None when a mask is empty (or, per frame, no frame has both)."""
    if not a.any() or not b.any():
        return None
    if per_frame:
        parts = [_distances(a[k], b[k], spacing[1:]) for k in range(a.shape[0]) if a[k].any() and b[k].any()]
        if not parts:
            return None
        pooled = np.concatenate(parts)
    else:
        pooled = _distances(a, b, spacing)
    return float(np.percentile(pooled, 95))


def compare(first, final, spacing: Sequence[float], per_frame: bool = False) -> Comparison:
    """first, final: MaskRevision-like (bbox, data, voxel_count) or None (no proposal: an empty one)."""
    window = Window.around([first, final])
    if window is None:
        return Comparison(0, 1.0, None, [], [], [])
    a, b = window.crop(first), window.crop(final)
    changed = a ^ b
    both = int((a & b).sum())
    total = int(a.sum()) + int(b.sum())
    z0 = window.lo[0]

    def frames(m: np.ndarray) -> list[int]:
        return [z0 + int(k) for k in np.flatnonzero(m.any(axis=(1, 2)))]

    return Comparison(
        voxels_changed=int(changed.sum()),
        dice=(2.0 * both / total) if total else 1.0,
        hd95_mm=hd95(a, b, spacing, per_frame),
        corrected_frames=frames(changed),
        final_frames=frames(b),
        union_frames=frames(a | b),
    )


def provenance(revisions: Sequence, model_names: dict[int, str]) -> dict[str, dict]:
    """{"<frame>": {"source", "user", "model", "touched_by"}} for each frame of the final mask and
    each frame a person changed: who made the frame as it stands last, and every person who changed it.

    revisions: the target's revisions in order (each compared with the one before it);
    model_names: revision id -> the model that wrote it."""
    window = Window.around(revisions)
    if window is None:
        return {}
    z0 = window.lo[0]
    previous = np.zeros(window.shape, dtype=bool)
    made_by: dict[int, tuple[str, int | None, str | None]] = {}
    touched: dict[int, set[int]] = defaultdict(set)
    for revision in revisions:
        current = window.crop(revision)
        for k in np.flatnonzero((current ^ previous).any(axis=(1, 2))):
            frame = z0 + int(k)
            made_by[frame] = (revision.source, revision.author_id, model_names.get(revision.pk))
            if revision.source != "model" and revision.author_id is not None:
                touched[frame].add(revision.author_id)
        previous = current
    final = {z0 + int(k) for k in np.flatnonzero(previous.any(axis=(1, 2)))}
    out = {}
    for frame in sorted(final | set(touched)):
        source, user, model = made_by.get(frame, ("model", None, None))
        out[str(frame)] = {
            "source": source,
            "user": user if source != "model" else None,
            "model": model if source == "model" else None,
            "touched_by": sorted(touched[frame]),
            "in_final": frame in final,
        }
    return out
