"""What a DICOM object must be before its pixels are read: a supported image class, whole, with sane
spacing. All checks read the header only (pixel data deferred), in the upload request.

Supported SOP classes (anything else carrying pixels is refused by name; objects without pixels, such
as reports, key images, presentation states or RT structure sets, travel in study exports and are
skipped by name):

CT, Enhanced CT, Legacy Converted Enhanced CT; MR, Enhanced MR, Legacy Converted Enhanced MR; PET,
Enhanced PET, Legacy Converted Enhanced PET; Ultrasound, Ultrasound Multi-frame; Secondary Capture and
the four Multi-frame Secondary Captures; VL Endoscopic, Video Endoscopic. What each becomes is decided
by its content (io/dicom_io.py): grey slices with positions a volume, a multi-frame instance without
positions a video, colour a video.

Spacing: PixelSpacing (and ImagerPixelSpacing, and the Pixel Measures functional group) must be
positive and finite; SliceThickness and SpacingBetweenSlices must not be negative or non-finite (0 is
how writers say "not given" and is then not used as a spacing).
"""

import math
from io import BytesIO
from pathlib import Path

from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID

from annotation_app.imaging.io.errors import IngestError, unsupported

SUPPORTED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT Image",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image",
    "1.2.840.10008.5.1.4.1.1.4.4": "Legacy Converted Enhanced MR Image",
    "1.2.840.10008.5.1.4.1.1.128": "PET Image",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET Image",
    "1.2.840.10008.5.1.4.1.1.128.1": "Legacy Converted Enhanced PET Image",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.77.1.1": "VL Endoscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": "Video Endoscopic Image",
}
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
SUPPORTED_SUMMARY = "CT, MR, PET, ultrasound, secondary capture and endoscopy images"
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "PALETTE COLOR"}


def sop_class(ds) -> str:
    value = ds.get("SOPClassUID")
    if not value and hasattr(ds, "file_meta"):
        value = ds.file_meta.get("MediaStorageSOPClassUID")
    return str(value or "")


def sop_class_name(ds) -> str:
    uid = sop_class(ds)
    if not uid:
        return "no SOP Class UID"
    name = UID(uid).name
    return name if name and name != uid else f"unknown class {uid}"


def carries_pixels(ds) -> bool:
    return any(tag in ds for tag in PIXEL_TAGS) or "Rows" in ds


def is_supported_image(ds, name: str) -> bool:
    """True for an image this product reads; False for an object without pixels (skipped by name);
    raises for anything else that carries pixels, naming its class."""
    uid = sop_class(ds)
    if uid in SUPPORTED_SOP_CLASSES:
        return True
    if not carries_pixels(ds):
        return False
    if uid == SEGMENTATION:
        raise unsupported(
            f"{name} is a DICOM Segmentation; import it onto its case as masks (import-masks), "
            "not as an image"
        )
    raise unsupported(
        f"{name} is a DICOM {sop_class_name(ds)} object, which is not supported; "
        f"supported DICOM objects are {SUPPORTED_SUMMARY}"
    )


def is_colour(ds) -> bool:
    return int(ds.get("SamplesPerPixel", 1) or 1) != 1 or str(ds.get("PhotometricInterpretation", "")) in _COLOUR


# --- pixel data present


def check_pixel_length(ds, path: Path, name: str) -> None:
    """Refuse pixel data shorter than rows x columns x frames x samples (native), or with fewer
    fragments than frames (encapsulated), before anything is stored."""
    tag = next((t for t in PIXEL_TAGS if t in ds), None)
    if tag is None:
        return
    element = ds.get_item(tag)
    value = getattr(element, "value", None)
    value_tell = getattr(element, "value_tell", None)
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    frames = _frames(ds)
    if tag == "PixelData" and syntax is not None and UID(syntax).is_encapsulated:
        try:
            if value is not None:
                fragments = _count_fragments(BytesIO(bytes(value)))
            else:  # read item headers only, seeking over the fragments
                with open(path, "rb") as handle:
                    handle.seek(int(value_tell or 0))
                    fragments = _count_fragments(handle)
        except (ValueError, OSError, TypeError) as exc:
            raise IngestError(f"DICOM file {name} has damaged compressed pixel data ({exc})", code="corrupt") from None
        if fragments < frames:
            raise IngestError(
                f"DICOM file {name} is truncated: {frames} frames but {fragments} compressed fragments",
                code="truncated",
            )
        return
    try:
        needed = get_expected_length(ds, "bytes")
    except (AttributeError, KeyError, TypeError, ValueError):
        raise IngestError(
            f"DICOM file {name} lacks the image pixel description (Rows, Columns, SamplesPerPixel, "
            "BitsAllocated, PhotometricInterpretation)",
            code="corrupt",
        ) from None
    if value is not None:
        present = len(value)
    else:
        declared = int(getattr(element, "length", 0) or 0)
        present = max(0, min(declared, path.stat().st_size - int(value_tell or 0)))
    if present < needed:
        raise IngestError(
            f"DICOM file {name} is truncated: its pixel data has {present} bytes but "
            f"{int(ds.Rows)}x{int(ds.Columns)} pixels x {frames} frames need {needed}",
            code="truncated",
        )


def _count_fragments(buffer) -> int:
    parse_basic_offsets(buffer)
    return parse_fragments(buffer)[0]


def _frames(ds) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


# --- spacing


def _values(value) -> list:
    if value is None or value == "":
        return []
    try:
        return [float(v) for v in value] if not isinstance(value, str | int | float) else [float(value)]
    except TypeError:
        return [float(value)]


def check_spacing(ds, name: str) -> None:
    """Refuse zero, negative or non-finite pixel spacing and negative or non-finite slice spacing
    wherever the header gives them: top level and the Pixel Measures functional group."""
    holders = [("", ds)]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "PixelMeasuresSequence" in shared[0]:
        holders.append(("shared Pixel Measures ", shared[0].PixelMeasuresSequence[0]))
    for index, group in enumerate(ds.get("PerFrameFunctionalGroupsSequence") or []):
        if "PixelMeasuresSequence" in group:
            holders.append((f"frame {index + 1} Pixel Measures ", group.PixelMeasuresSequence[0]))
    for where, holder in holders:
        for keyword, allow_zero in (
            ("PixelSpacing", False),
            ("ImagerPixelSpacing", False),
            ("SliceThickness", True),
            ("SpacingBetweenSlices", True),
        ):
            if keyword not in holder:
                continue
            raw = holder.get(keyword)
            try:
                values = _values(raw)
            except (TypeError, ValueError):
                raise IngestError(
                    f"DICOM file {name} has an unreadable {where}{keyword} ({raw})", code="invalid_spacing"
                ) from None
            if keyword.endswith("PixelSpacing") and values and len(values) != 2:
                raise IngestError(
                    f"DICOM file {name} has a {where}{keyword} with {len(values)} values; it needs 2",
                    code="invalid_spacing",
                )
            for value in values:
                if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
                    rule = "positive and finite" if not allow_zero else "zero (not given) or positive, and finite"
                    raise IngestError(
                        f"DICOM file {name} has a {where}{keyword} of {raw}; it must be {rule}",
                        code="invalid_spacing",
                    )


def source_window(ds) -> dict | None:
    """The window (level, width) the file itself proposes: WindowCenter/WindowWidth at the top level or
    in the Frame VOI LUT functional group (shared, else the first frame's)."""
    holders = [ds]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "FrameVOILUTSequence" in shared[0]:
        holders.append(shared[0].FrameVOILUTSequence[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and "FrameVOILUTSequence" in per_frame[0]:
        holders.append(per_frame[0].FrameVOILUTSequence[0])
    for holder in holders:
        try:
            centers, widths = _values(holder.get("WindowCenter")), _values(holder.get("WindowWidth"))
        except (TypeError, ValueError):
            continue
        if centers and widths and math.isfinite(centers[0]) and math.isfinite(widths[0]) and widths[0] > 0:
            return {"level": centers[0], "width": widths[0]}
    return None
