"""What the model sees of a case: the pixels the slice renderer shows.

A volume's stored values become real units through its stored rescale (real = stored * slope +
intercept, `image_meta["rescale"]`), and a CT is windowed in real units (HU) with the case's window.
The worker does both through the slice renderer's own functions (`annotation_app.imaging.rendering`:
`case_rescale`, `resolve_window`, `window`, which is medsam2.window.apply, the one window mapping), so
the frames the model encodes are, pixel for pixel, the 8-bit slices the annotator looks at. MR and PET
keep the model's percentile scaling (of real values); videos are display values already.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotation_app.imaging.rendering import SliceRequestError, case_rescale, resolve_window, window
from medsam2.window import DEFAULT_PRESET, PRESETS, Window

SLAB = 16  # slices windowed at once (bounded float32 temporaries on big series)


@dataclass(frozen=True)
class ModelInput:
    array: np.ndarray  # uint8 display frames (display=True) or real values for the model's own scaling
    modality: str
    display: bool
    key: str  # what the frames depend on besides the image (part of the feature-cache key)


def ct_display(array: np.ndarray, win: Window, slope: float, intercept: float) -> np.ndarray:
    out = np.empty(array.shape, dtype=np.uint8)
    for z in range(0, array.shape[0], SLAB):
        out[z : z + SLAB] = window(np.asarray(array[z : z + SLAB]), win, slope, intercept)
    return out


def _ct_window(case) -> Window | None:
    """The window of a CT volume (the renderer's default window of the case), else None."""
    if case.kind != "volume" or case.modality != "CT":
        return None
    try:
        return resolve_window(case, None, None, None)
    except SliceRequestError:  # a broken stored window: the default preset
        return PRESETS[DEFAULT_PRESET]


def model_input_key(case) -> str:
    """What the model's frames depend on besides the stored image (part of the feature-cache key)."""
    slope, intercept = case_rescale(case)
    ct = _ct_window(case)
    if ct is not None:
        return f"ct:{ct.level:g},{ct.width:g};{slope:g},{intercept:g}"
    return f"{case.modality}:{slope:g},{intercept:g}"


def model_input(case, array: np.ndarray) -> ModelInput:
    """The frames (or real values) to start a predictor session on for `case`'s stored `array`."""
    slope, intercept = case_rescale(case)
    ct = _ct_window(case)
    key = model_input_key(case)
    if ct is not None:
        return ModelInput(ct_display(array, ct, slope, intercept), "CT", True, key)
    if (slope, intercept) != (1.0, 0.0):
        real = np.asarray(array, dtype=np.float32) * np.float32(slope) + np.float32(intercept)
        return ModelInput(real, case.modality, False, key)
    return ModelInput(np.asarray(array), case.modality, False, key)
