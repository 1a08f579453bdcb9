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

#: Named CT windows: name -> (width, level) in Hounsfield units.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "abdomen": (400.0, 40.0),
    "soft_tissue": (400.0, 50.0),
    "liver": (150.0, 30.0),
    "lung": (1500.0, -600.0),
    "brain": (80.0, 40.0),
    "mediastinum": (350.0, 50.0),
    "bone": (1800.0, 400.0),
}

DEFAULT_CT_WINDOW = "abdomen"

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


_CHUNK_VOXELS = 1 << 22  # ~4M voxels per float64 chunk (32 MB): bounded memory on big CT series


def _scale_to_uint8(arr: np.ndarray, lower: float, upper: float, keep_zero: bool = False) -> np.ndarray:
    """Clip ``arr`` to [lower, upper], scale to 0..255, round; processed in slabs along axis 0.

    NaN -> 0. With ``keep_zero`` voxels that are exactly 0 (or NaN) in ``arr`` stay 0.
    """
    if arr.ndim == 0:
        return _scale_to_uint8(arr[None], lower, upper, keep_zero)[0]
    out = np.empty(arr.shape, dtype=np.uint8)
    step = max(1, _CHUNK_VOXELS // max(1, arr[0].size))
    for i in range(0, arr.shape[0], step):
        chunk = np.asarray(arr[i : i + step], dtype=np.float64)
        nan = np.isnan(chunk)
        # Multiply before dividing: (v - lower) * 255 / width is exact for the half-way values that
        # a precomputed 255 / width factor would round the wrong way (e.g. 40 HU in the abdomen window).
        scaled = (np.clip(chunk, lower, upper) - lower) * 255.0 / (upper - lower)
        scaled[nan] = 0.0
        if keep_zero:
            scaled[(chunk == 0) | nan] = 0.0
        out[i : i + step] = np.rint(scaled)
    return out


def window_ct(volume: np.ndarray, width: float, level: float) -> np.ndarray:
    """Map Hounsfield units to uint8 with a CT window.

    Values are clipped to ``[level - width/2, level + width/2]`` and scaled linearly so that the lower
    bound becomes 0 and the upper bound 255 (rounded to nearest). Shape is preserved. NaN -> 0.
    """
    if not width > 0:
        raise ValueError(f"window width must be positive, got {width}")
    lower = level - width / 2.0
    return _scale_to_uint8(np.asarray(volume), lower, lower + width)


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
    return _scale_to_uint8(arr, p_lo, p_hi, keep_zero=True)


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
) -> np.ndarray:
    """Modality-aware intensity mapping to display values.

    Args:
        array: ``(T, H, W)`` volume/video or ``(T, H, W, 3)`` RGB video, any numeric dtype.
        modality: "CT", "MR"/"MRI", "PT"/"PET", "US", "ENDOSCOPY"/"ES", "XA", "OT" (any case).
        window: CT window name (see :data:`CT_WINDOWS`), ``"W,L"`` string or ``(width, level)`` pair.
            CT defaults to "abdomen". For MR/PET an explicit window replaces the percentile mapping
            (a user who picked a window wants it). Ignored for video modalities (US/ES/XA/OT).

    Returns:
        ``uint8`` array of the same shape: CT windowed, MR/PET percentile-scaled (0.5..99.5 of non-zero
        voxels), US/ES/XA/OT passed through (clipped to 0..255 and rounded if not already uint8).
    """
    arr = np.asarray(array)
    _check_frames_shape(arr)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"array must be numeric, got dtype {arr.dtype}")
    code = normalize_modality(modality)
    if code == "CT":
        width, level = parse_window(DEFAULT_CT_WINDOW if window is None else window)
        return window_ct(arr, width, level)
    if code in ("MR", "PT"):
        if window is not None:
            width, level = parse_window(window)
            return window_ct(arr, width, level)
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
