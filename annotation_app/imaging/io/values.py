"""Value handling shared by the readers: int16 encoding of volumes, default windows, finiteness."""

import numpy as np

from annotation_app.imaging.io.errors import IngestError
from medsam2.window import DEFAULT_PRESET, PRESETS, Window

INT16_MIN, INT16_MAX = -32768, 32767


def require_finite(array: np.ndarray, what: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise IngestError(f"{what} contains {bad} NaN or infinite values", code="non_finite")


def to_int16(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Encode a volume as int16; returns (stored, slope, intercept) with real = stored*slope + intercept.

    Integral data that fits int16 (CT in HU, most MR) is stored unchanged (slope 1, intercept 0);
    integral data spanning at most 65536 values (uint16 MR up to 65535, say) is shifted into int16
    (slope 1), so it too is exact; anything else is mapped linearly onto the int16 range (within half a
    step of 1/65535 of the range).
    """
    if array.dtype == np.int16:
        return array, 1.0, 0.0
    if array.size == 0:
        return array.astype(np.int16), 1.0, 0.0
    lo, hi = float(array.min()), float(array.max())
    integral = np.issubdtype(array.dtype, np.integer) or all(
        bool(np.all(np.mod(array[k : k + 16], 1) == 0)) for k in range(0, array.shape[0], 16)
    )
    if integral and lo >= INT16_MIN and hi <= INT16_MAX:
        return array.astype(np.int16), 1.0, 0.0
    if integral and hi - lo <= INT16_MAX - INT16_MIN:
        shift = int(lo) - INT16_MIN
        stored = np.empty(array.shape, dtype=np.int16)
        for k in range(0, array.shape[0], 16):  # in slabs: no int64 copy of a large volume
            stored[k : k + 16] = array[k : k + 16].astype(np.int64) - shift
        return stored, 1.0, float(shift)
    span = hi - lo
    slope = span / (INT16_MAX - INT16_MIN) if span > 0 else 1.0
    intercept = lo - INT16_MIN * slope
    stored = np.clip(np.rint((array.astype(np.float64) - intercept) / slope), INT16_MIN, INT16_MAX)
    return stored.astype(np.int16), float(slope), float(intercept)


def default_window(stored: np.ndarray, slope: float, intercept: float, modality: str | None) -> dict:
    """A window (level, width) in real units, as medsam2.window.Window.as_dict(): the default preset
    (abdomen) for CT, the 0.5-99.5 percentiles otherwise."""
    if modality == "CT":
        return {**PRESETS[DEFAULT_PRESET].as_dict(), "preset": DEFAULT_PRESET}
    sample = stored[:: max(1, stored.shape[0] // 16)].reshape(-1)
    sample = sample[:: max(1, sample.size // 2_000_000)]
    if sample.size == 0:
        return {"level": 0.0, "width": 1.0}
    lo, hi = np.percentile(sample.astype(np.float64) * slope + intercept, [0.5, 99.5])
    return Window(float((lo + hi) / 2), float(max(hi - lo, 1e-3))).as_dict()


def value_range(stored: np.ndarray, slope: float, intercept: float) -> list[float]:
    if stored.size == 0:
        return [0.0, 0.0]
    return [float(stored.min()) * slope + intercept, float(stored.max()) * slope + intercept]
