"""One intensity window: level and width in real units, the named presets, and the one mapping to 8 bits.

A stored volume holds integers; its real values (Hounsfield units for CT) are
``real = stored * slope + intercept`` (the case's rescale). A :class:`Window` is a ``level`` (centre)
and a ``width`` in real units: ``level - width/2`` maps to 0, ``level + width/2`` to 255, linear in
between, rounded to the nearest grey level, NaN to 0.

:data:`PRESETS` is the only table of named CT windows in the project: the slice renderer, the
worker's model input, the training data, the CLI and the browser (served by ``GET /api/windows/``)
all read it. "liver" is W 150 / L 30, the liver window of the standard radiology tables (Radiopaedia's
"Windowing (CT)"; also the value this package always used); the renderer's former 160/60 was a
contrast-phase variant that none of those tables lists.

Only numpy: the web process uses it without torch, and ``medsam2`` imports no Django.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["DEFAULT_PRESET", "PRESETS", "Window", "apply", "scale_to_uint8"]


@dataclass(frozen=True)
class Window:
    """A display window in real units (HU for CT). Width must be positive and both finite."""

    level: float
    width: float
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        level, width = float(self.level), float(self.width)
        if not (math.isfinite(level) and math.isfinite(width)) or width <= 0:
            raise ValueError(f"window width must be a positive finite number and level finite, "
                             f"got level={self.level}, width={self.width}")
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "width", width)

    @property
    def lower(self) -> float:
        return self.level - self.width / 2.0

    @property
    def upper(self) -> float:
        return self.lower + self.width

    def as_dict(self) -> dict[str, float]:
        """What ingest stores in ``image_meta["window"]``: ``{"level", "width"}`` in real units."""
        return {"level": self.level, "width": self.width}

    @classmethod
    def named(cls, name: str) -> Window:
        """A preset by name (case-insensitive); ``ValueError`` naming the presets otherwise."""
        key = name.strip().lower()
        if key not in PRESETS:
            raise ValueError(f"unknown CT window {name!r}; choose from {', '.join(PRESETS)}")
        return PRESETS[key]

    @classmethod
    def from_stored(cls, stored: Any, default: Window | None = None) -> Window:
        """The window kept in a case's ``image_meta["window"]`` (``{"level", "width"}``, maybe with a
        ``"preset"`` name); ``default`` (the default preset) when nothing is stored."""
        if isinstance(stored, dict) and ("level" in stored or "width" in stored):
            fallback = default or PRESETS[DEFAULT_PRESET]
            return cls(float(stored.get("level", fallback.level)), float(stored.get("width", fallback.width)))
        if isinstance(stored, dict) and stored.get("preset"):
            return cls.named(str(stored["preset"]))
        return default or PRESETS[DEFAULT_PRESET]

    def apply(self, stored: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
        """``stored`` values (real = stored * slope + intercept) as uint8 through this window."""
        return apply(stored, self, slope, intercept)


#: The named CT windows (level, width in HU), in the order the browser numbers them (keys 1, 2, ...).
PRESETS: dict[str, Window] = {
    "abdomen": Window(40.0, 400.0, "CT abdomen"),
    "lung": Window(-600.0, 1500.0, "Lung"),
    "brain": Window(40.0, 80.0, "Brain"),
    "bone": Window(400.0, 1800.0, "Bone"),
    "mediastinum": Window(50.0, 350.0, "Mediastinum"),
    "liver": Window(30.0, 150.0, "Liver"),
    "soft_tissue": Window(50.0, 400.0, "Soft tissue"),
}

#: The window of a CT that has none of its own.
DEFAULT_PRESET = "abdomen"

_CHUNK_VOXELS = 1 << 22  # ~4M voxels per float64 chunk (32 MB): bounded memory on big CT series
_LUT_MIN_VALUES = 1 << 16  # from this many integer values on, one lookup table beats the arithmetic


def _scale_chunk(chunk: np.ndarray, lower: float, upper: float, keep_zero: bool, slope: float,
                 intercept: float) -> np.ndarray:
    """The formula on one float64 chunk of stored values (a new array, rounded, not yet uint8)."""
    nan = np.isnan(chunk)
    zero = (chunk == 0) | nan if keep_zero else None
    real = chunk if (slope == 1.0 and intercept == 0.0) else chunk * slope + intercept
    # Multiply before dividing: (v - lower) * 255 / width is exact for the half-way values that
    # a precomputed 255 / width factor would round the wrong way (e.g. 40 HU in the abdomen window).
    scaled = (np.clip(real, lower, upper) - lower) * 255.0 / (upper - lower)
    scaled[nan] = 0.0
    if zero is not None:
        scaled[zero] = 0.0
    return np.rint(scaled)


@lru_cache(maxsize=64)
def _lookup_table(dtype: str, lower: float, upper: float, keep_zero: bool, slope: float,
                  intercept: float) -> np.ndarray:
    """uint8 for every value of a 8/16-bit integer dtype, indexed by the values' unsigned bit pattern:
    the formula itself, evaluated once, so a lookup gives exactly the bytes the formula gives."""
    signed = np.dtype(dtype)
    unsigned = np.dtype(f"u{signed.itemsize}")
    values = np.arange(1 << (8 * signed.itemsize), dtype=np.int64).astype(unsigned).view(signed)
    table = _scale_chunk(values.astype(np.float64), lower, upper, keep_zero, slope, intercept).astype(np.uint8)
    table.flags.writeable = False
    return table


def scale_to_uint8(
    arr: np.ndarray,
    lower: float,
    upper: float,
    keep_zero: bool = False,
    slope: float = 1.0,
    intercept: float = 0.0,
) -> np.ndarray:
    """Real values ``arr * slope + intercept`` clipped to [lower, upper], scaled to 0..255, rounded to
    nearest (half to even); processed in slabs along axis 0. NaN -> 0. With ``keep_zero`` voxels whose
    stored value is exactly 0 (or NaN) stay 0 (the background of MR/PET).

    8- and 16-bit integer arrays (stored volumes are int16) of 64 Ki values or more go through a lookup
    table of the same formula: the same bytes, ~20x faster than the float64 arithmetic on a slice."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return scale_to_uint8(arr[None], lower, upper, keep_zero, slope, intercept)[0]
    args = (float(lower), float(upper), bool(keep_zero), float(slope), float(intercept))
    if arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2 and arr.size >= _LUT_MIN_VALUES:
        table = _lookup_table(arr.dtype.str, *args)
        return table[arr.view(f"u{arr.dtype.itemsize}")]
    out = np.empty(arr.shape, dtype=np.uint8)
    step = max(1, _CHUNK_VOXELS // max(1, arr[0].size))
    for i in range(0, arr.shape[0], step):
        out[i : i + step] = _scale_chunk(np.asarray(arr[i : i + step], dtype=np.float64), *args)
    return out


def apply(stored: np.ndarray, window: Window, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """The one window mapping: stored values -> real units (rescale) -> uint8 through ``window``."""
    return scale_to_uint8(np.asarray(stored), window.lower, window.upper, slope=float(slope),
                          intercept=float(intercept))
