"""Turning request bodies into full masks and full masks into per-frame RLE for the browser.

Masks are bool arrays in the case's canonical order (frames, height, width). Slice RLE is row-major
and starts with a run of zeros (see annotation_app.lib.maskcodec). numpy only: no torch here.
"""

import base64
import binascii
import math
import zlib

import numpy as np
from rest_framework.exceptions import ValidationError

from annotation_app.annotations.models import MaskRevision
from annotation_app.lib.maskcodec import MaskFormatError, decode_crop, decode_slice_rle, encode_slice_rle


def _frame_index(key: str, n_frames: int) -> int:
    if not key.isdigit() or int(key) >= n_frames:
        raise ValueError(f"frame keys are integers in [0, {n_frames - 1}]")
    return int(key)


def apply_slices(base: MaskRevision | None, slices: dict, shape: list[int]) -> np.ndarray:
    """A copy of `base` (or an empty mask) with the given frames replaced.

    slices: {"<frame>": {"rle": [..]}}; shape: [frames, height, width]."""
    mask = base.mask() if base is not None else np.zeros(shape, dtype=bool)
    if list(mask.shape) != shape:
        raise ValidationError({"base_revision": [f"has shape {list(mask.shape)}, the case is {shape}."]})
    errors = {}
    for key, item in slices.items():
        try:
            mask[_frame_index(key, shape[0])] = decode_slice_rle(item["rle"], shape[1], shape[2])
        except (ValueError, MaskFormatError) as exc:
            errors[key] = [str(exc)]
    if errors:
        raise ValidationError({"slices": errors})
    if not slices:
        raise ValidationError({"slices": ["Give at least one frame."]})
    return mask


def decode_full_mask(text: str, shape: list[int]) -> np.ndarray:
    """base64 of numpy.packbits(mask.reshape(-1)) (C order), optionally zlib-compressed, -> bool (shape)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError({"mask_b64": ["Not valid base64."]}) from None
    n = int(np.prod(shape))
    expected = math.ceil(n / 8)
    if len(raw) != expected:
        try:
            raw = zlib.decompress(raw)
        except zlib.error:
            raw = b""
        if len(raw) != expected:
            raise ValidationError(
                {"mask_b64": [f"Expected {expected} packed bytes for a mask of shape {shape} (raw or zlib)."]}
            )
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:n]
    return bits.reshape(shape).astype(bool)


def _bound(params, name: str, default: int, n_frames: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["Must be an integer."]}) from None
    if not 0 <= value <= n_frames:
        raise ValidationError({name: [f"Must be in [0, {n_frames}]."]})
    return value


def frames_as_rle(revision: MaskRevision, params) -> dict[str, list[int]]:
    """{"<frame>": rle} for every frame in [start, stop) of the revision (empty frames included).

    Works on the stored bounding-box crop, never the whole volume: frames outside the box are one
    zeros run, frames inside are padded to (height, width) one at a time."""
    n_frames, height, width = (int(s) for s in revision.shape[:3])
    start = _bound(params, "start", 0, n_frames)
    stop = _bound(params, "stop", n_frames, n_frames)
    if start > stop:
        raise ValidationError({"stop": ["Must not be below start."]})
    z0, y0, x0, z1, y1, x1 = revision.bbox
    crop = (
        decode_crop(bytes(revision.data), revision.bbox) if revision.voxel_count and z0 < stop and z1 > start else None
    )
    empty = [height * width]
    frames = {}
    frame = np.zeros((height, width), dtype=bool)
    for k in range(start, stop):
        if crop is None or not z0 <= k < z1:
            frames[str(k)] = empty
            continue
        frame[:] = False
        frame[y0:y1, x0:x1] = crop[k - z0]
        frames[str(k)] = encode_slice_rle(frame)
    return frames
