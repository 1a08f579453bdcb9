"""Intensity normalisation and model-input preparation for MedSAM2.

Two stages, kept apart on purpose so that the app can show exactly what the model sees:

1. ``to_uint8``: modality-aware mapping of raw intensities (CT Hounsfield units, MRI/PET arbitrary units,
   video pixels) to ``uint8`` display values 0..255.  CT uses a window (width, level); MR and PET are
   clipped to percentiles of their non-zero voxels, as in the MedSAM2 data pipeline; ultrasound and
   endoscopy frames are already display values.
2. ``to_model_input``: ``uint8`` frames -> float tensor ``(T, 3, S, S)``, resized and ImageNet-normalised,
   which is what the SAM2 image encoder was trained on.

Only numpy is needed for stage 1; torch is imported lazily in stage 2 so that the Django app may use the
display mapping without pulling torch in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from medsam2.window import DEFAULT_PRESET, PRESETS, Window, apply, scale_to_uint8

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = [
    "CT_WINDOWS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODALITIES",
    "normalize_modality",
    "parse_window",
    "percentile_uint8",
    "to_model_input",
    "to_uint8",
    "window_ct",
]

#: Named CT windows as name -> (width, level) in Hounsfield units: a view of the one table,
#: :data:`medsam2.window.PRESETS` (level, width), kept for the CLI's "W,L" spelling.
CT_WINDOWS: dict[str, tuple[float, float]] = {name: (w.width, w.level) for name, w in PRESETS.items()}

DEFAULT_CT_WINDOW = DEFAULT_PRESET

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Accepted spellings (upper-cased) -> canonical DICOM-style modality code.
_MODALITY_ALIASES: dict[str, str] = {
    "CT": "CT",
    "MR": "MR",
    "MRI": "MR",
    "PT": "PT",
    "PET": "PT",
    "US": "US",
    "ULTRASOUND": "US",
    "ES": "ES",
    "ENDOSCOPY": "ES",
    "XA": "XA",
    "OT": "OT",
}

#: Canonical modality codes understood by :func:`to_uint8`.
MODALITIES: tuple[str, ...] = ("CT", "MR", "PT", "US", "ES", "XA", "OT")


def normalize_modality(modality: str) -> str:
    """Return the canonical code ("CT", "MR", "PT", "US", "ES", "XA", "OT") for a modality name.

    Case-insensitive; accepts "MRI", "PET", "endoscopy", "ultrasound". Raises ``ValueError`` otherwise.
    """
    if not isinstance(modality, str):
        raise ValueError(f"modality must be a string, got {type(modality).__name__}")
    key = modality.strip().upper()
    if key not in _MODALITY_ALIASES:
        accepted = ", ".join(sorted(_MODALITY_ALIASES))
        raise ValueError(f"unknown modality {modality!r}; expected one of {accepted}")
    return _MODALITY_ALIASES[key]


def parse_window(window: str | tuple[float, float] | list[float]) -> tuple[float, float]:
    """Turn a window spec into ``(width, level)``.

    Accepts a name from :data:`CT_WINDOWS` (case-insensitive), a ``"W,L"`` string such as ``"400,40"``,
    or a ``(width, level)`` pair. Width must be positive.
    """
    if isinstance(window, str):
        name = window.strip().lower()
        if name in CT_WINDOWS:
            return CT_WINDOWS[name]
        if "," in name:
            parts = name.split(",")
            try:
                width, level = (float(p) for p in parts)
            except ValueError:
                raise ValueError(f"window {window!r} is not 'WIDTH,LEVEL' (two numbers)") from None
        else:
            names = ", ".join(sorted(CT_WINDOWS))
            raise ValueError(f"unknown CT window {window!r}; use one of {names} or 'WIDTH,LEVEL'")
    else:
        try:
            width, level = (float(v) for v in window)
        except (TypeError, ValueError):
            raise ValueError(f"window must be a name or a (width, level) pair, got {window!r}") from None
    if not np.isfinite(width) or not np.isfinite(level) or width <= 0:
        raise ValueError(f"window width must be a positive finite number, got width={width}, level={level}")
    return width, level


def window_ct(volume: np.ndarray, width: float, level: float) -> np.ndarray:
    """Map Hounsfield units to uint8 with a CT window.

    Values are clipped to ``[level - width/2, level + width/2]`` and scaled linearly so that the lower
    bound becomes 0 and the upper bound 255 (rounded to nearest). Shape is preserved. NaN -> 0.
    """
    if not width > 0:
        raise ValueError(f"window width must be positive, got {width}")
    return apply(np.asarray(volume), Window(level, width))


def percentile_uint8(volume: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> np.ndarray:
    """Map MRI/PET intensities to uint8 using percentiles of the non-zero voxels.

    The ``lo``/``hi`` percentiles (0..100) are computed over voxels != 0 only, because the zero
    background outside the body would otherwise dominate the low percentile. Values are clipped to
    that range and scaled to 0..255 (rounded); voxels that were exactly 0 (or NaN) stay 0. An all-zero
    input gives all zeros; a constant non-zero input maps its non-zero voxels to 255.
    """
    if not 0.0 <= lo < hi <= 100.0:
        raise ValueError(f"need 0 <= lo < hi <= 100, got lo={lo}, hi={hi}")
    arr = np.asarray(volume)
    valid = arr != 0
    if np.issubdtype(arr.dtype, np.floating):
        valid &= ~np.isnan(arr)
    if not valid.any():
        return np.zeros(arr.shape, dtype=np.uint8)
    p_lo, p_hi = (float(v) for v in np.percentile(arr[valid], [lo, hi]))
    if p_hi <= p_lo:
        return np.where(valid, np.uint8(255), np.uint8(0))
    return scale_to_uint8(arr, p_lo, p_hi, keep_zero=True)


def _check_frames_shape(array: np.ndarray) -> None:
    """Accept (T,H,W) or (T,H,W,3) with no empty axis (numpy arrays or tensors)."""
    if array.ndim == 3 or (array.ndim == 4 and array.shape[-1] == 3):
        if 0 in array.shape:
            raise ValueError(f"array has an empty dimension: shape {array.shape}")
        return
    raise ValueError(f"expected shape (T,H,W) or (T,H,W,3), got {array.shape}")


def to_uint8(
    array: np.ndarray,
    modality: str,
    window: str | tuple[float, float] | None = None,
    *,
    rescale: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Modality-aware intensity mapping to display values.

    Args:
        array: ``(T, H, W)`` volume/video or ``(T, H, W, 3)`` RGB video, any numeric dtype.
        modality: "CT", "MR"/"MRI", "PT"/"PET", "US", "ENDOSCOPY"/"ES", "XA", "OT" (any case).
        window: CT window name (see :data:`CT_WINDOWS`), ``"W,L"`` string or ``(width, level)`` pair.
            CT defaults to "abdomen". For MR/PET an explicit window replaces the percentile mapping
            (a user who picked a window wants it). Ignored for video modalities (US/ES/XA/OT).
        rescale: ``(slope, intercept)`` of stored values: real = array * slope + intercept (a case's
            stored rescale); windows and percentiles apply to the real values.

    Returns:
        ``uint8`` array of the same shape: CT windowed, MR/PET percentile-scaled (0.5..99.5 of non-zero
        voxels), US/ES/XA/OT passed through (clipped to 0..255 and rounded if not already uint8).
    """
    arr = np.asarray(array)
    _check_frames_shape(arr)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"array must be numeric, got dtype {arr.dtype}")
    code = normalize_modality(modality)
    slope, intercept = (float(v) for v in rescale)
    if code == "CT" or (code in ("MR", "PT") and window is not None):
        width, level = parse_window(DEFAULT_CT_WINDOW if window is None else window)
        return apply(arr, Window(level, width), slope, intercept)
    if code in ("MR", "PT"):
        if (slope, intercept) != (1.0, 0.0):
            arr = np.asarray(arr, dtype=np.float64) * slope + intercept
        return percentile_uint8(arr)
    # Video-like modalities already carry display values.
    if arr.dtype == np.uint8:
        return arr.copy()
    return np.rint(np.clip(np.nan_to_num(arr.astype(np.float64), nan=0.0), 0, 255)).astype(np.uint8)


def to_model_input(
    frames_uint8: np.ndarray | torch.Tensor,
    image_size: int,
    *,
    device: str | torch.device | None = None,
    chunk_size: int = 16,
) -> torch.Tensor:
    """Prepare display frames for the SAM2 image encoder.

    Args:
        frames_uint8: ``(T, H, W)`` grayscale or ``(T, H, W, 3)`` RGB, uint8 (numpy array or tensor).
        image_size: side ``S`` of the square model input (512 for MedSAM2).
        device: where the result lives (default CPU).
        chunk_size: frames resized at once, to bound peak memory on long series.

    Returns:
        ``torch.float32`` tensor ``(T, 3, S, S)``: grayscale repeated to 3 channels, resized with
        bilinear + antialias (aspect ratio is NOT kept, as in SAM2), scaled to 0..1 and normalised with
        ImageNet mean/std per channel.
    """
    import torch
    import torch.nn.functional as F

    if isinstance(frames_uint8, torch.Tensor):
        frames = frames_uint8.detach().cpu()
    else:
        frames = torch.from_numpy(np.ascontiguousarray(np.asarray(frames_uint8)))
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    _check_frames_shape(frames)  # type: ignore[arg-type]  # only .ndim/.shape are used
    if int(image_size) <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    size = int(image_size)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    out = torch.empty((frames.shape[0], 3, size, size), dtype=torch.float32)
    for start in range(0, frames.shape[0], max(1, chunk_size)):
        chunk = frames[start : start + chunk_size]
        if chunk.ndim == 3:
            x = chunk.unsqueeze(1).float().div_(255.0)  # (t,1,H,W): resize once, expand after
        else:
            x = chunk.permute(0, 3, 1, 2).float().div_(255.0)  # (t,3,H,W)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = x.expand(-1, 3, -1, -1)
        out[start : start + chunk.shape[0]] = (x - mean) / std
    if device is not None:
        out = out.to(device)
    return out
