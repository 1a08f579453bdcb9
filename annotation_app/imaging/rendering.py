"""Slices and thumbnails of canonical case arrays, windowed to 8 bits and encoded for the browser.

Axes of a volume (z, y, x), LPS: "axial" = array[k] (anterior at the top, patient's right on the left);
"coronal" = array[:, k, :] and "sagittal" = array[:, :, k], both flipped vertically so that superior is
at the top (row 0 is the last z). Videos only have frames ("axial" or "frame", index = t).
Windows are medsam2.window.Window (level, width in real units, HU for CT; the one preset table and
the one mapping to 8 bits); stored int16 values map to real units through image_meta["rescale"]
(real = stored * slope + intercept).
"""

import io
import struct
import zlib
from functools import lru_cache

import numpy as np
from PIL import Image

from annotation_app.imaging.storage import open_case_array
from medsam2.window import PRESETS, Window, apply

AXES = ("axial", "coronal", "sagittal", "frame")
FORMATS = ("png", "webp", "raw")
CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "raw": "application/octet-stream"}


class SliceRequestError(ValueError):
    pass


@lru_cache(maxsize=32)
def _cached_array(key: str, case_pk: int):
    """Memory maps are cheap but opening them is not free; keep the last few per process."""
    from annotation_app.imaging.models import Case

    return open_case_array(Case(pk=case_pk, image_key=key))


def case_array(case) -> np.ndarray:
    return _cached_array(case.image_key, case.pk)


def axis_length(case, axis: str) -> int:
    shape = case.shape
    if case.kind == "video" or axis in ("axial", "frame"):
        return int(shape[0])
    return int(shape[1] if axis == "coronal" else shape[2])


def extract(array: np.ndarray, kind: str, axis: str, index: int) -> np.ndarray:
    """A 2D view (H, W) or (H, W, 3) of the array; raises SliceRequestError for bad axis/index."""
    if axis not in AXES:
        raise SliceRequestError(f"axis must be one of {', '.join(AXES)}")
    if kind == "video" and axis not in ("axial", "frame"):
        raise SliceRequestError("videos only have frames (axis=frame)")
    if axis == "frame" and kind != "video":
        axis = "axial"
    n = array.shape[0] if axis in ("axial", "frame") else array.shape[1 if axis == "coronal" else 2]
    if not 0 <= index < n:
        raise SliceRequestError(f"index must be between 0 and {n - 1} for axis {axis}")
    if axis in ("axial", "frame"):
        return np.asarray(array[index])
    if axis == "coronal":
        return np.asarray(array[::-1, index, :])
    return np.asarray(array[::-1, :, index])


def resolve_window(case, level: float | None, width: float | None, preset: str | None) -> Window:
    """The requested window: a named preset, else the given level/width, each defaulting to the case's
    stored window (ingest stores one), else the default preset."""
    if preset:
        if preset not in PRESETS:
            raise SliceRequestError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        return PRESETS[preset]
    try:
        default = Window.from_stored((case.image_meta or {}).get("window"))
        return Window(default.level if level is None else level, default.width if width is None else width)
    except (TypeError, ValueError):
        raise SliceRequestError("ww (window width) must be a positive number and wl finite") from None


def case_rescale(case) -> tuple[float, float]:
    """(slope, intercept) of a case's stored values: real = stored * slope + intercept (identity if unset).
    The one reading of the rule: slices, thumbnails and the model's input (inference_worker.intensity)."""
    rescale = (case.image_meta or {}).get("rescale") or {}
    return float(rescale.get("slope", 1.0)), float(rescale.get("intercept", 0.0))


def window(image: np.ndarray, win: Window, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Map stored values to uint8 through `win` (medsam2.window.apply: the renderer, the worker's
    model input and the training data share it, so the same stored CT gives the same bytes)."""
    return apply(image, win, slope, intercept)


def encode(image: np.ndarray, fmt: str) -> bytes:
    """PNG (fast zlib level) or lossless WebP (fastest effort) of a uint8 (H, W) or (H, W, 3) array."""
    if fmt == "png":
        return encode_png(image)
    picture = Image.fromarray(np.ascontiguousarray(image))
    buffer = io.BytesIO()
    if fmt == "webp":
        # lossless (exact grey values, like PNG) at the fastest effort: ~PNG size, faster to encode
        picture.save(buffer, format="WEBP", lossless=True, quality=0, method=0)
    else:
        raise SliceRequestError(f"format must be one of {', '.join(FORMATS)}")
    return buffer.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray) -> bytes:
    """8-bit grey (H, W) or RGB (H, W, 3) PNG with the "Sub" filter on every row and zlib level 1.

    Pillow tries every filter on every row; one vectorised filter is about 40% faster for CT slices at
    the same size, which is most of the time a slice request takes."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    rows = image.reshape(height, width * channels)
    raw = np.empty((height, width * channels + 1), dtype=np.uint8)
    raw[:, 0] = 1  # filter type Sub: each byte minus the byte one pixel to the left (mod 256)
    raw[:, 1 : 1 + channels] = rows[:, :channels]
    np.subtract(rows[:, channels:], rows[:, :-channels], out=raw[:, 1 + channels :])
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 1))
        + _png_chunk(b"IEND", b"")
    )


def render_slice(case, axis: str, index: int, fmt: str, level=None, width=None, preset=None):
    """(body bytes, extra headers) for one slice of a ready case."""
    if fmt not in FORMATS:
        raise SliceRequestError(f"format must be one of {', '.join(FORMATS)}")
    view = extract(case_array(case), case.kind, axis, index)
    headers = {"X-Shape": ",".join(str(s) for s in view.shape)}
    if axis in ("coronal", "sagittal"):
        headers["X-Row-Order"] = "superior-first"
    if fmt == "raw":
        dtype = "<i2" if case.kind == "volume" else "u1"
        headers["X-Dtype"] = "int16" if case.kind == "volume" else "uint8"
        slope, intercept = case_rescale(case)
        headers["X-Rescale-Slope"] = str(slope)
        headers["X-Rescale-Intercept"] = str(intercept)
        return np.ascontiguousarray(view, dtype=dtype).tobytes(), headers
    if case.kind == "volume":
        win = resolve_window(case, level, width, preset)
        view = window(view, win, *case_rescale(case))
        headers["X-Window"] = f"{win.level:g},{win.width:g}"
    return encode(view, fmt), headers


def render_thumbnail(case, fmt: str = "png", size: int = 192) -> bytes:
    """The middle axial slice (or middle frame), default window, longest side `size` pixels."""
    array = case_array(case)
    view = extract(array, case.kind, "axial", array.shape[0] // 2)
    if case.kind == "volume":
        view = window(view, resolve_window(case, None, None, None), *case_rescale(case))
    picture = Image.fromarray(np.ascontiguousarray(view))
    picture.thumbnail((size, size), Image.Resampling.BILINEAR)
    return encode(np.asarray(picture), fmt)
