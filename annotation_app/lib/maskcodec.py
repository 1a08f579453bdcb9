"""Compact storage of binary masks in Postgres: crop to the bounding box, bit-pack, zlib.

Axis order is the case's canonical array order: (z, y, x) for volumes, (t, y, x) for videos.
A bounding box is stored as [z0, y0, x0, z1, y1, x1] with exclusive upper bounds.
numpy only: the web process never imports torch.
"""

import zlib
from dataclasses import dataclass

import numpy as np


class MaskFormatError(ValueError):
    pass


@dataclass(frozen=True)
class EncodedMask:
    data: bytes
    bbox: list[int]
    voxel_count: int
    shape: list[int]


def encode_mask(mask: np.ndarray) -> EncodedMask:
    """Encode a 3D boolean array (D,H,W). An empty mask stores no bytes and an empty box."""
    if mask.ndim != 3:
        raise MaskFormatError(f"mask must be 3D (D,H,W), got {mask.ndim}D")
    mask = mask.astype(bool, copy=False)
    shape = [int(s) for s in mask.shape]
    count = int(mask.sum())
    if count == 0:
        return EncodedMask(b"", [0, 0, 0, 0, 0, 0], 0, shape)
    lo, hi = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=other))
        lo.append(int(present[0]))
        hi.append(int(present[-1]) + 1)
    crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    packed = np.packbits(np.ascontiguousarray(crop).reshape(-1))
    return EncodedMask(zlib.compress(packed.tobytes(), 6), lo + hi, count, shape)


def decode_crop(data: bytes, bbox: list[int]) -> np.ndarray:
    """The stored bounding-box crop alone, bool (z1-z0, y1-y0, x1-x0); cheap for one frame of a big case."""
    z0, y0, x0, z1, y1, x1 = bbox
    crop_shape = (z1 - z0, y1 - y0, x1 - x0)
    if not data:
        return np.zeros(crop_shape, dtype=bool)
    n = int(np.prod(crop_shape))
    try:
        bits = np.unpackbits(np.frombuffer(zlib.decompress(data), dtype=np.uint8))[:n]
    except zlib.error as exc:
        raise MaskFormatError(f"corrupt mask data: {exc}") from None
    if bits.size != n:
        raise MaskFormatError("mask data is shorter than its bounding box")
    return bits.reshape(crop_shape).view(bool)


def decode_mask(data: bytes, bbox: list[int], shape: list[int]) -> np.ndarray:
    """Inverse of encode_mask: a boolean array of `shape`."""
    out = np.zeros(tuple(shape), dtype=bool)
    if not data:
        return out
    z0, y0, x0, z1, y1, x1 = bbox
    out[z0:z1, y0:y1, x0:x1] = decode_crop(data, bbox)
    return out


def encode_slice_rle(mask2d: np.ndarray) -> list[int]:
    """Run lengths of a 2D mask in row-major order, starting with a run of zeros (for the browser)."""
    flat = mask2d.astype(np.uint8).reshape(-1)
    if flat.size == 0:
        return []
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0] + runs
    return [int(r) for r in runs]


def decode_slice_rle(runs: list[int], height: int, width: int) -> np.ndarray:
    total = height * width
    if sum(runs) != total or any(r < 0 for r in runs):
        raise MaskFormatError(f"run lengths must be non-negative and sum to {total}")
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape(height, width)
