"""Reading and writing volumes (SimpleITK) and videos (PyAV) for the CLI and scripts.

Volumes come back as numpy ``(D, H, W)`` = ``(z, y, x)`` arrays plus the SimpleITK image they were read
from, which carries the geometry (spacing, origin, direction) that written masks must share. Videos are
``(T, H, W, 3)`` uint8 RGB. Every problem with the input (missing file, unsupported format, wrong
dimensionality, unreadable content) raises :class:`InputError` with a one-line message.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = [
    "InputError",
    "VIDEO_SUFFIXES",
    "VOLUME_SUFFIXES",
    "overlay_masks",
    "read_video",
    "read_volume",
    "write_mask_like",
    "write_png_masks",
    "write_video",
]

PathLike = str | os.PathLike[str]

#: File suffixes read as volumes (a folder is read as a DICOM series).
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
#: Mask outputs SimpleITK can write with geometry.
MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

# A small fixed palette for object ids in PNG masks and overlays (id 0 = background).
_PALETTE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]],
    dtype=np.uint8,
)  # fmt: skip


class InputError(ValueError):
    """Input that cannot be used: missing, unsupported, unreadable or of the wrong shape."""


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _sitk():
    import SimpleITK as sitk

    return sitk


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # SimpleITK messages start with a source location; the useful part is usually the last line.
    return lines[-1] if lines else type(exc).__name__


def read_volume(path: PathLike):
    """Read a 3D scan: NIfTI (.nii/.nii.gz), NRRD, MetaImage (.mha/.mhd), a DICOM file or a DICOM folder.

    Returns ``(array, image)``: ``array`` is ``(D, H, W)`` in the file's pixel type; ``image`` is the
    SimpleITK image (use it as ``reference`` in :func:`write_mask_like`). A folder with several DICOM
    series is read as the series with the most files. Raises :class:`InputError`.
    """
    sitk = _sitk()
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file or folder: {p}")
    try:
        if p.is_dir():
            reader = sitk.ImageSeriesReader()
            # GDCM prints multi-line warnings for folders without DICOM; our InputError says it once.
            shown = sitk.ProcessObject.GetGlobalWarningDisplay()
            sitk.ProcessObject.SetGlobalWarningDisplay(False)
            try:
                series = reader.GetGDCMSeriesIDs(str(p))
            finally:
                sitk.ProcessObject.SetGlobalWarningDisplay(shown)
            if not series:
                raise InputError(f"no DICOM series found in folder {p}")
            files = max((reader.GetGDCMSeriesFileNames(str(p), s) for s in series), key=len)
            reader.SetFileNames(files)
            image = reader.Execute()
        else:
            suffix = _suffix(p)
            if suffix not in VOLUME_SUFFIXES:
                raise InputError(
                    f"unsupported volume format {suffix or p.name!r}; use {', '.join(VOLUME_SUFFIXES)} "
                    "or a DICOM folder"
                )
            image = sitk.ReadImage(str(p))
    except RuntimeError as exc:  # SimpleITK/ITK read failures
        raise InputError(f"cannot read {p}: {_first_line(exc)}") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{p} has {image.GetNumberOfComponentsPerPixel()} channels per voxel; expected a scalar volume"
        )
    dim = image.GetDimension()
    if dim != 3:
        raise InputError(f"{p} is a {dim}D image of size {image.GetSize()}; expected a 3D volume")
    array = sitk.GetArrayFromImage(image)
    if min(array.shape) == 0:
        raise InputError(f"{p} is empty (size {image.GetSize()})")
    return array, image


def write_mask_like(mask: np.ndarray, reference_image, path: PathLike) -> Path:
    """Write a ``(D, H, W)`` label mask (uint8 ids) with the geometry of ``reference_image``.

    The format follows the suffix (.nii.gz, .nii, .nrrd, .mha, .mhd); folders are created. Returns the path.
    """
    sitk = _sitk()
    p = Path(path)
    if _suffix(p) not in MASK_SUFFIXES:
        raise InputError(f"unsupported mask format {_suffix(p) or p.name!r}; use {', '.join(MASK_SUFFIXES)}")
    arr = np.asarray(mask)
    expected = tuple(reversed(reference_image.GetSize()))
    if arr.shape != expected:
        raise InputError(f"mask shape {arr.shape} does not match the image's (D, H, W) {expected}")
    if arr.dtype == bool or arr.max(initial=0) <= 255 and arr.min(initial=0) >= 0:
        arr = arr.astype(np.uint8)
    else:
        raise InputError("mask values must be in 0..255")
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(reference_image)
    p.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(out, str(p), True)
    return p


def _read_frame_folder(folder: Path, max_frames: int | None) -> tuple[np.ndarray, float]:
    from PIL import Image

    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in _FRAME_SUFFIXES)
    if not files:
        raise InputError(f"no video frames (jpg/png) found in folder {folder}")
    files = files[:max_frames] if max_frames else files
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except OSError as exc:
            raise InputError(f"cannot read frame {f}: {exc}") from None
    if len({fr.shape for fr in frames}) != 1:
        raise InputError(f"frames in {folder} differ in size")
    return np.stack(frames), 25.0


def read_video(path: PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video file (mp4, avi, ...) or a folder of JPEG/PNG frames.

    Returns ``(frames, fps)``: ``frames`` is ``(T, H, W, 3)`` uint8 RGB; ``fps`` is the stream's average
    rate (25.0 for frame folders or streams without one). At most ``max_frames`` frames are read.
    """
    import av

    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file or folder: {p}")
    if p.is_dir():
        return _read_frame_folder(p, max_frames)
    if _suffix(p) not in VIDEO_SUFFIXES:
        raise InputError(f"unsupported video format {_suffix(p) or p.name!r}; use {', '.join(VIDEO_SUFFIXES)}")
    frames: list[np.ndarray] = []
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"{p} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 25.0
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames and len(frames) >= max_frames:
                    break
    except av.FFmpegError as exc:
        raise InputError(f"cannot read video {p}: {exc}") from None
    if not frames:
        raise InputError(f"{p} contains no video frames")
    return np.stack(frames), fps


def write_video(frames: np.ndarray, path: PathLike, fps: float = 25.0) -> str:
    """Encode ``(T, H, W)`` or ``(T, H, W, 3)`` uint8 frames to an mp4 (H.264, or MPEG-4 Part 2 when this
    FFmpeg build has no H.264 encoder). Odd sizes are padded by one edge pixel (yuv420p needs even
    sides). Returns the codec used."""
    import av

    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise InputError(f"frames must be (T,H,W) or (T,H,W,3) with T >= 1, got {np.asarray(frames).shape}")
    if arr.dtype != np.uint8:
        raise InputError(f"frames must be uint8, got {arr.dtype}")
    pad_h, pad_w = arr.shape[1] % 2, arr.shape[2] % 2
    if pad_h or pad_w:
        arr = np.pad(arr, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(p), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        assert isinstance(stream, av.VideoStream)  # narrows the type; a video codec gives a video stream
        stream.width, stream.height = int(arr.shape[2]), int(arr.shape[1])
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "20", "preset": "veryfast"}
        else:
            stream.bit_rate = 4_000_000
        for frame in arr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec


def write_png_masks(masks: np.ndarray, folder: PathLike) -> list[Path]:
    """Write ``(T, H, W)`` uint8 object-id masks as palette PNGs ``00000.png``, ``00001.png``, ...

    Pixel values stay the object ids (0 = background), as in DAVIS/SAM2 annotations; the palette only
    colours them for viewing. Returns the written paths.
    """
    from PIL import Image

    arr = np.asarray(masks)
    if arr.ndim != 3:
        raise InputError(f"masks must be (T, H, W), got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype != np.uint8:
        raise InputError(f"masks must be uint8 object ids, got {arr.dtype}")
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1:] = _PALETTE[1:][np.arange(255) % (len(_PALETTE) - 1)]
    paths = []
    for t, m in enumerate(arr):
        im = Image.fromarray(np.ascontiguousarray(m))  # mode "L"; putpalette turns it into "P"
        im.putpalette(palette.reshape(-1).tolist())
        target = out_dir / f"{t:05d}.png"
        im.save(target)
        paths.append(target)
    return paths


def overlay_masks(frames: np.ndarray, masks: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend object-id ``masks`` (T,H,W) over ``frames`` ((T,H,W) or (T,H,W,3) uint8) in palette colours.

    Returns ``(T, H, W, 3)`` uint8.
    """
    f = np.asarray(frames)
    rgb = np.repeat(f[..., None], 3, axis=-1) if f.ndim == 3 else f
    m = np.asarray(masks).astype(np.intp)
    if rgb.shape[:3] != m.shape:
        raise InputError(f"frames {rgb.shape[:3]} and masks {m.shape} differ in size")
    colors = _PALETTE[np.where(m > 0, (m - 1) % (len(_PALETTE) - 1) + 1, 0)]
    blended = np.where(m[..., None] > 0, (1 - alpha) * rgb + alpha * colors, rgb)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
