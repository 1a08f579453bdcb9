"""DICOM series: header probing (cheap, in the upload request) and pixel loading (in the worker).

Probing reads headers with large values deferred, so the request can refuse files without pixel data,
unsupported transfer syntaxes, mixed orientations, duplicate or unevenly spaced slices and oversize
images before anything is stored. Slices are ordered by ImagePositionPatient projected on the slice
normal (row x column cosines); stored values are converted with the modality LUT (rescale slope and
intercept) to real units (HU for CT): for enhanced (multi-frame) images the rescale lives in the Pixel
Value Transformation functional group, shared or per frame, and highdicom applies it.

Which SOP classes are read, the pixel-data length and the spacing rules are in io/dicom_policy.py.
Colour images (RGB, YBR, palette colour) are videos: a multi-frame instance is one, and the single-frame
colour instances of a series (ultrasound stills, secondary captures) are its frames in instance order;
they are never a volume whose rows would be slices.
"""

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_rescale, get_decoder

from annotation_app.imaging.io import dicom_policy, geometry
from annotation_app.imaging.io.errors import IngestError, too_large, unsupported
from annotation_app.imaging.io.model import LoadedImage, Source
from annotation_app.imaging.io.values import default_window, require_finite, to_int16, value_range
from annotation_app.imaging.limits import Limits

_PIXEL_TAGS = dicom_policy.PIXEL_TAGS
_MODALITIES = {"CT": "CT", "MR": "MR", "PT": "PT", "US": "US", "ES": "ES", "XC": "ES", "GM": "ES"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".ima", ""}


def has_preamble(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def read_header(path: Path, display_name: str) -> pydicom.Dataset:
    """Headers only (values over 1 KiB are read lazily); raises IngestError for non-DICOM content."""
    force = not has_preamble(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, defer_size=1024, force=force)
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError) as exc:
        raise IngestError(f"{display_name} is not a readable DICOM file ({exc})", code="corrupt") from None
    # `force=True` accepts almost any bytes; a real DICOM object has at least these.
    if force and "SOPClassUID" not in ds and "Rows" not in ds:
        raise IngestError(f"{display_name} is not a DICOM file", code="corrupt")
    if "SeriesInstanceUID" not in ds and is_image(ds):
        raise IngestError(f"{display_name} has no SeriesInstanceUID", code="corrupt")
    return ds


def is_image(ds) -> bool:
    """An image instance (as opposed to SR, KO, PR ... objects that travel in study exports): it has
    pixel data or at least claims an image size; the latter without pixels is an error later."""
    return any(tag in ds for tag in _PIXEL_TAGS) or "Rows" in ds


def _n_frames(ds) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _check_instance(ds, name: str, limits: Limits) -> None:
    if not any(tag in ds for tag in _PIXEL_TAGS):
        raise IngestError(f"DICOM file {name} has no pixel data (missing or cut off)", code="no_pixel_data")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is not None:
        try:
            available = get_decoder(syntax).is_available
        except NotImplementedError:
            available = False
        if not available:
            label = getattr(syntax, "name", str(syntax))
            raise unsupported(
                f"DICOM file {name} uses the transfer syntax '{label}' ({syntax}), which cannot be decoded"
            )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows <= 0 or cols <= 0:
        raise IngestError(f"DICOM file {name} has no image size (Rows/Columns)", code="corrupt")
    if rows > limits.max_dim or cols > limits.max_dim:
        raise too_large(f"DICOM file {name} is {cols}x{rows} pixels; the limit is {limits.max_dim} per side")
    if _n_frames(ds) > limits.max_frames:
        raise too_large(f"DICOM file {name} has {_n_frames(ds)} frames; the limit is {limits.max_frames}")
    dicom_policy.check_spacing(ds, name)
    dicom_policy.check_pixel_length(ds, Path(ds.filename), name)


def _modality(ds) -> str | None:
    return _MODALITIES.get(str(ds.get("Modality", "")).upper())


def _orientation(ds) -> np.ndarray | None:
    if "ImageOrientationPatient" in ds:
        return np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=float)
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "PlaneOrientationSequence" in shared[0]:
        return np.asarray([float(v) for v in shared[0].PlaneOrientationSequence[0].ImageOrientationPatient])
    return None


def _pixel_spacing(ds) -> tuple[float, float]:
    """(row spacing, column spacing) in mm = (y, x)."""
    value = ds.get("PixelSpacing")
    if value is None:
        shared = ds.get("SharedFunctionalGroupsSequence")
        if shared and "PixelMeasuresSequence" in shared[0]:
            value = shared[0].PixelMeasuresSequence[0].get("PixelSpacing")
    if value is None:
        value = ds.get("ImagerPixelSpacing") or [1.0, 1.0]
    return float(value[0]), float(value[1])


def _frame_positions(ds) -> list[np.ndarray] | None:
    groups = ds.get("PerFrameFunctionalGroupsSequence")
    if not groups:
        return None
    out = []
    for group in groups:
        if "PlanePositionSequence" not in group:
            return None
        out.append(np.asarray([float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient]))
    return out


def _order_along_normal(positions: list[np.ndarray], iop: np.ndarray, what: str, limits: Limits):
    """Sort slices along the normal; returns (order, spacing between slices, normal)."""
    normal = np.cross(iop[:3], iop[3:])
    along = np.asarray([float(np.dot(p, normal)) for p in positions])
    order = np.argsort(along, kind="stable")
    if len(order) < 2:
        return order, None, normal
    gaps = np.diff(along[order])
    if np.any(gaps < 1e-3):
        raise IngestError(
            f"{what}: several slices share the same position (a multi-phase or 4D series?)",
            code="duplicate_slices",
        )
    typical = float(np.median(gaps))
    worst = float(np.max(np.abs(gaps - typical)))
    if worst > limits.spacing_tolerance * typical:
        raise IngestError(
            f"{what}: inconsistent slice spacing (gaps from {gaps.min():.3g} to {gaps.max():.3g} mm; "
            "missing slices?)",
            code="inconsistent_spacing",
        )
    return order, typical, normal


def probe(headers: list[tuple[str, pydicom.Dataset]], limits: Limits) -> list[Source]:
    """Group headers into series (multi-frame instances are sources of their own) and validate each."""
    series: OrderedDict[str, list[tuple[str, pydicom.Dataset]]] = OrderedDict()
    colour: OrderedDict[str, list[tuple[str, pydicom.Dataset]]] = OrderedDict()
    sources: list[Source] = []
    for name, ds in headers:
        _check_instance(ds, name, limits)
        if _n_frames(ds) > 1:
            sources.append(_probe_multiframe(name, ds, limits))
        elif dicom_policy.is_colour(ds):
            colour.setdefault(str(ds.SeriesInstanceUID), []).append((name, ds))
        else:
            series.setdefault(str(ds.SeriesInstanceUID), []).append((name, ds))
    for uid, items in series.items():
        sources.append(_probe_single_frame_series(uid, items, limits))
    for uid, items in colour.items():
        sources.append(_probe_colour_frames(uid, items, limits))
    return sources


def _probe_colour_frames(uid: str, items, limits: Limits) -> Source:
    """Single-frame colour instances of one series: a video whose frames are the instances in
    InstanceNumber order (one instance: a one-frame video), as a folder of PNG/JPEG frames is."""
    what = f"DICOM series {uid}"
    first = items[0][1]
    size = (int(first.Rows), int(first.Columns))
    for name, ds in items:
        if (int(ds.Rows), int(ds.Columns)) != size:
            raise IngestError(
                f"{what}: colour frame {name} is {ds.Columns}x{ds.Rows} but the first is {size[1]}x{size[0]}",
                code="inconsistent_size",
            )
    if len(items) > limits.max_frames:
        raise too_large(f"{what} has {len(items)} frames; the limit is {limits.max_frames}")
    if len(items) * size[0] * size[1] * 3 > limits.max_voxels:
        raise too_large(f"{what} holds more than {limits.max_voxels} values")
    order = sorted(range(len(items)), key=lambda i: int(items[i][1].get("InstanceNumber", 0) or 0))
    info = {
        "series_uid": uid,
        "study_uid": str(first.get("StudyInstanceUID", "")),
        "instances": [str(items[i][1].get("SOPInstanceUID", "")) for i in order],
        "frames": len(items),
        "frame_rate": None,
        "reference": _reference(first),
    }
    files = [items[i][0] for i in order]
    return Source("dicom", "video", _series_name(first, uid), files, _modality(first) or "US", info)


def _series_name(ds, fallback: str) -> str:
    parts = [str(ds.get("Modality", "")), str(ds.get("SeriesDescription", "") or "")]
    text = " ".join(p for p in parts if p).strip()
    return text or fallback


def _probe_single_frame_series(uid: str, items, limits: Limits) -> Source:
    what = f"DICOM series {uid}"
    first = items[0][1]
    size = (int(first.Rows), int(first.Columns))
    if any((int(ds.Rows), int(ds.Columns)) != size for _, ds in items):
        raise IngestError(f"{what}: slices differ in size", code="inconsistent_size")
    if len(items) > limits.max_frames:
        raise too_large(f"{what} has {len(items)} slices; the limit is {limits.max_frames}")
    if len(items) * size[0] * size[1] > limits.max_voxels:
        raise too_large(f"{what} has more than {limits.max_voxels} voxels")
    orientations = [_orientation(ds) for _, ds in items]
    has_position = ["ImagePositionPatient" in ds for _, ds in items]
    known = [o for o in orientations if o is not None]
    if len(known) == len(orientations) and all(has_position):
        iop = known[0]
        for other in known[1:]:
            if not np.allclose(other, iop, atol=1e-3):
                raise IngestError(f"{what} mixes slice orientations", code="mixed_orientations")
        positions = [np.asarray([float(v) for v in ds.ImagePositionPatient]) for _, ds in items]
        order, gap, normal = _order_along_normal(positions, iop, what, limits)
        origin = positions[int(order[0])].tolist()
    elif any(has_position) or known:
        raise IngestError(
            f"{what}: only some slices carry position/orientation", code="inconsistent_geometry"
        )
    else:  # secondary captures without geometry: instance order, nominal spacing
        order = np.argsort([int(ds.get("InstanceNumber", 0) or 0) for _, ds in items], kind="stable")
        iop, normal, origin = np.asarray([1.0, 0, 0, 0, 1.0, 0]), np.asarray([0, 0, 1.0]), [0.0, 0.0, 0.0]
        gap = None
    if gap is None:
        gap = float(first.get("SpacingBetweenSlices", 0) or first.get("SliceThickness", 0) or 1.0)
    row_sp, col_sp = _pixel_spacing(first)
    direction = np.stack([iop[:3], iop[3:], normal], axis=1).reshape(-1).tolist()
    files = [items[int(i)][0] for i in order]
    info = {
        "series_uid": uid,
        "study_uid": str(first.get("StudyInstanceUID", "")),
        "instances": [str(items[int(i)][1].get("SOPInstanceUID", "")) for i in order],
        "source_geometry": {
            "size": [size[1], size[0], len(items)],
            "spacing": [col_sp, row_sp, gap],
            "origin": origin,
            "direction": direction,
        },
        "reference": _reference(first),
        "window": dicom_policy.source_window(first),
    }
    return Source("dicom", "volume", _series_name(first, uid), files, _modality(first), info)


def _probe_multiframe(name: str, ds, limits: Limits) -> Source:
    frames, rows, cols = _n_frames(ds), int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if frames * rows * cols * samples > limits.max_voxels:
        raise too_large(f"DICOM file {name} has more than {limits.max_voxels} voxels")
    positions = _frame_positions(ds)
    if positions is not None and len(positions) != frames:
        raise IngestError(
            f"DICOM file {name} has {frames} frames but {len(positions)} per-frame positions",
            code="inconsistent_geometry",
        )
    iop = _orientation(ds)
    info = {
        "series_uid": str(ds.SeriesInstanceUID),
        "study_uid": str(ds.get("StudyInstanceUID", "")),
        "instances": [str(ds.get("SOPInstanceUID", ""))],
        "frames": frames,
        "reference": _reference(ds),
        "window": dicom_policy.source_window(ds),
    }
    if positions is not None and iop is not None and not dicom_policy.is_colour(ds) and _modality(ds) != "US":
        order, gap, normal = _order_along_normal(positions, iop, f"DICOM file {name}", limits)
        row_sp, col_sp = _pixel_spacing(ds)
        info["frame_order"] = [int(i) for i in order]
        info["source_geometry"] = {
            "size": [cols, rows, frames],
            "spacing": [col_sp, row_sp, gap or float(ds.get("SliceThickness", 1.0) or 1.0)],
            "origin": positions[int(order[0])].tolist(),
            "direction": np.stack([iop[:3], iop[3:], normal], axis=1).reshape(-1).tolist(),
        }
        return Source("dicom", "volume", _series_name(ds, name), [name], _modality(ds), info)
    info["frame_rate"] = _frame_rate(ds)
    return Source("dicom", "video", _series_name(ds, name), [name], _modality(ds) or "US", info)


def _frame_rate(ds) -> float | None:
    for key, convert in (
        ("CineRate", float),
        ("RecommendedDisplayFrameRate", float),
        ("FrameTime", lambda v: 1000.0 / float(v)),
    ):
        value = ds.get(key)
        try:
            if value not in (None, "") and float(value) > 0:
                return float(convert(value))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
    return None


def _reference(ds) -> dict:
    """Study/patient facts needed to build a DICOM SEG that references this series."""
    keys = (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "FrameOfReferenceUID",
        "SOPClassUID",
        "Modality",
        "SeriesNumber",
        "Manufacturer",
    )
    return {key: str(ds.get(key, "") or "") for key in keys}


def _read_pixels(path: Path, name: str):
    try:
        ds = pydicom.dcmread(path, force=not has_preamble(path))
        return ds, ds.pixel_array
    except Exception as exc:  # decoders raise many types; the message names the file
        raise IngestError(
            f"the pixel data of DICOM file {name} cannot be decoded ({exc})", code="corrupt"
        ) from None


def _read_real_values(path: Path, name: str):
    """(dataset, pixels in real units: HU for CT). Classic images carry their modality LUT (rescale
    slope/intercept or a LUT) at the top level, which pydicom applies; enhanced multi-frame images carry
    it in the Pixel Value Transformation functional group (shared, or per frame), which highdicom
    applies frame by frame. Real-world value maps and VOI windows are not applied (they are views)."""
    import highdicom as hd

    try:
        ds = pydicom.dcmread(path, force=not has_preamble(path))
        if _n_frames(ds) > 1 or "SharedFunctionalGroupsSequence" in ds:
            image = hd.Image.from_dataset(ds, copy=False)
            return ds, image.get_frames(
                dtype=np.float32,
                apply_real_world_transform=False,
                apply_modality_transform=None,  # when the file has one
                apply_voi_transform=False,
                apply_palette_color_lut=False,
                apply_icc_profile=False,
            )
        pixels = ds.pixel_array
    except Exception as exc:  # decoders raise many types; the message names the file
        raise IngestError(
            f"the pixel data of DICOM file {name} cannot be decoded ({exc})", code="corrupt"
        ) from None
    if "ModalityLUTSequence" in ds or "RescaleSlope" in ds or "RescaleIntercept" in ds:
        return ds, apply_rescale(pixels, ds)
    return ds, pixels


def load(root: Path, source: Source, progress=None) -> LoadedImage:
    if source.kind == "video":
        return _load_cine(root, source)
    # One float32 buffer filled slice by slice (exact for HU and any 16-bit integer data), rather than
    # a list of float64 slices and a stacked copy: a third of the peak memory for big series.
    volume: np.ndarray | None = None
    n = len(source.files)
    for i, name in enumerate(source.files):
        ds, real = _read_real_values(root / name, name)
        if real.ndim == 3:  # an enhanced multi-frame volume, frames in position order
            frames = real[source.info.get("frame_order", list(range(real.shape[0])))]
        else:
            frames = real[None]
        if volume is None:
            volume = np.empty((n * frames.shape[0], *frames.shape[1:]), dtype=np.float32)
        if frames.shape[1:] != volume.shape[1:]:
            raise IngestError(
                f"DICOM file {name} differs in size from the rest of its series", code="corrupt"
            )
        volume[i * frames.shape[0] : (i + 1) * frames.shape[0]] = frames
        if progress and (i % 8 == 0 or i == n - 1):
            progress(0.8 * (i + 1) / n)
    assert volume is not None
    require_finite(volume, f"DICOM series {source.info['series_uid']}")
    src_geometry = source.info["source_geometry"]
    array, canonical = geometry.orient_array(volume, src_geometry)
    stored, slope, intercept = to_int16(array)
    meta = _volume_meta(stored, slope, intercept, source.modality)
    meta.update(
        {
            "source_format": "dicom",
            "source_geometry": src_geometry,
            "dicom": {
                "instances": source.info["instances"],
                "series_uid": source.info["series_uid"],
                **source.info["reference"],
                # the window the file proposes (WindowCenter/Width or the Frame VOI LUT group), real units
                "window": source.info.get("window"),
            },
        }
    )
    return LoadedImage(
        stored,
        "volume",
        list(reversed(canonical["spacing"])),
        canonical["origin"],
        canonical["direction"],
        modality=source.modality,
        study_uid=source.info["study_uid"],
        series_uid=source.info["series_uid"],
        meta=meta,
    )


def _volume_meta(stored, slope, intercept, modality) -> dict:
    return {
        "dtype": "int16",
        "rescale": {"slope": slope, "intercept": intercept},
        "value_range": value_range(stored, slope, intercept),
        "window": default_window(stored, slope, intercept, modality),
    }


def _video_frames(ds, pixels, name: str) -> np.ndarray:
    """(t, y, x) grey or (t, y, x, 3) RGB frames of one instance; palette colour through its LUT
    (pydicom already turned YBR into RGB)."""
    frames = np.asarray(pixels)
    if str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR":
        try:
            frames = apply_color_lut(frames, ds)
        except (ValueError, KeyError, AttributeError) as exc:
            raise IngestError(f"DICOM file {name} has an unusable colour palette ({exc})", code="corrupt") from None
    colour = frames.ndim >= 3 and frames.shape[-1] == 3 and dicom_policy.is_colour(ds)
    if frames.ndim == (3 if colour else 2):
        frames = frames[None]
    return frames


def _load_cine(root: Path, source: Source) -> LoadedImage:
    """A multi-frame instance, or the single-frame colour instances of a series, as one video."""
    parts = []
    for name in source.files:
        ds, pixels = _read_pixels(root / name, name)
        part = _video_frames(ds, pixels, name)
        if parts and part.shape[1:] != parts[0].shape[1:]:
            raise IngestError(f"DICOM file {name} differs in size from the other frames", code="corrupt")
        parts.append(part)
    frames = parts[0] if len(parts) == 1 else np.concatenate(parts)
    name = source.files[0]
    require_finite(frames, f"DICOM file {name}")
    if frames.dtype != np.uint8:
        lo, hi = float(frames.min()), float(frames.max())
        frames = ((frames.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6))).round().astype(np.uint8)
    return LoadedImage(
        frames,
        "video",
        [1.0, *_pixel_spacing(ds)],
        [0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        frame_rate=source.info.get("frame_rate"),
        modality=source.modality,
        study_uid=source.info["study_uid"],
        series_uid=source.info["series_uid"],
        meta={
            "dtype": "uint8",
            "source_format": "dicom",
            "channels": 3 if frames.ndim == 4 else 1,
            "dicom": {
                "instances": source.info["instances"],
                "series_uid": source.info["series_uid"],
                **source.info["reference"],
            },
        },
    )
