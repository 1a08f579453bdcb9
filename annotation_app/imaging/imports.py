"""Importing label maps as masks: NIfTI/NRRD/MHA label maps and DICOM SEG, one target per label value
(or per SEG segment), each stored as a MaskRevision with source "import".

A label map must cover the case's voxel grid: it is reoriented to LPS like the image and then has to
match the canonical shape (and, for volumes, the spacing). A DICOM SEG must reference the instances the
case was built from (or those of a previous SEG export of the case).
"""

import tempfile
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from django.db import transaction

from annotation_app.imaging.exports import canonical_geometry, seg_reference, source_geometry
from annotation_app.imaging.io import geometry, sitk_io, volume_headers
from annotation_app.imaging.io.errors import IngestError, too_large
from annotation_app.imaging.limits import Limits
from annotation_app.imaging.models import Case

MAX_LABELS = 255
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(132)
    return head[128:132] == b"DICM"


def read_label_map(case: Case, path: Path, name: str) -> dict[str, np.ndarray]:
    """{label name: boolean canonical mask} from a label-map file."""
    if _is_dicom(path):
        return _read_seg(case, path, name)
    suffix = next((s for s in _LABEL_SUFFIXES if path.name.lower().endswith(s)), None)
    if suffix is None:
        raise IngestError(
            f"{name} is not a readable label map (NIfTI, NRRD, MHA or DICOM SEG)", code="corrupt"
        )
    with tempfile.TemporaryDirectory(prefix="labels-") as folder:
        # A private folder that holds only this file: a header naming a separate data file (an .mhd's
        # ElementDataFile, a detached NRRD's data file) finds nothing to read, neither a file of the
        # server nor another user's upload, and is refused before the reader runs.
        own = Path(folder) / f"labels{suffix}"
        own.symlink_to(path.resolve())
        try:
            volume_headers.check(Path(folder), own.name, Limits.current())
        except IngestError as exc:
            reason = exc.message.replace(own.name, name)
            raise IngestError(f"{name} is not a readable label map: {reason}", exc.status, exc.code) from None
        try:
            image = sitk.ReadImage(str(own), imageIO=sitk_io.image_io_for(own.name))
        except RuntimeError:
            raise IngestError(
                f"{name} is not a readable label map (NIfTI, NRRD, MHA or DICOM SEG)", code="corrupt"
            ) from None
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() != 3:
        raise IngestError(f"{name} must be a 3D scalar label map", code="invalid")
    if image.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        values = sitk.GetArrayViewFromImage(image)
        if not np.all(np.mod(values, 1) == 0):
            raise IngestError(
                f"{name} has non-integer values; a label map holds integer labels", code="invalid"
            )
    if case.kind == "volume":
        array, grid = geometry.to_canonical(image)
        expected = canonical_geometry(case)
        if list(grid["size"]) != expected["size"] or not np.allclose(
            grid["spacing"], expected["spacing"], rtol=1e-3, atol=1e-3
        ):
            got, want = "x".join(map(str, grid["size"])), "x".join(map(str, expected["size"]))
            raise IngestError(
                f"{name} is {got} voxels of {grid['spacing']} mm but the case is "
                f"{want} voxels of {expected['spacing']} mm",
                code="geometry",
            )
    else:
        array = sitk.GetArrayFromImage(image)
        if list(array.shape) != [int(s) for s in case.shape[:3]]:
            raise IngestError(
                f"{name} has shape {list(array.shape)}; the video is {case.shape[:3]}", code="geometry"
            )
    label_values = [int(v) for v in np.unique(array) if v != 0]
    if len(label_values) > MAX_LABELS:
        raise too_large(f"{name} has {len(label_values)} labels; at most {MAX_LABELS} are imported")
    names = [label["name"] for label in case.project.labels]
    out = {}
    for value in label_values:
        if len(names) == 1:
            label = f"{names[0]}#{value}"
        else:
            label = f"{names[value - 1]}#{value}" if 0 < value <= len(names) else f"label-{value}#{value}"
        out[label] = array == value
    return out


def _read_seg(case: Case, path: Path, name: str) -> dict[str, np.ndarray]:
    import highdicom as hd

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        raise IngestError(f"{name} is not a readable DICOM file", code="corrupt") from None
    if str(header.get("SOPClassUID", "")) != SEG_SOP_CLASS:
        raise IngestError(f"{name} is a DICOM file but not a Segmentation (SEG)", code="invalid")
    if case.kind != "volume":
        raise IngestError("DICOM SEG import is for volumes", code="invalid")
    instances = (seg_reference(case) or {}).get("instances") or []
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise IngestError(f"{name} is not a valid DICOM SEG ({exc})", code="corrupt") from None
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    if not instances or not referenced & set(instances):
        raise IngestError(f"{name} does not reference this case's images", code="geometry")
    out = {}
    canonical, grid = canonical_geometry(case), source_geometry(case)
    for description in seg.SegmentSequence:
        number = int(description.SegmentNumber)
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=instances,
            segment_numbers=[number],
            ignore_spatial_locations=True,
            assert_missing_frames_are_empty=True,
        )[..., 0]
        mask = geometry.resample_to(pixels.astype(np.uint8), grid, canonical).astype(bool)
        label = str(description.SegmentLabel).split(" #")[0] or "segment"
        out[f"{label}#{number}"] = mask
    return out


def import_masks(case: Case, path: Path, name: str, author=None) -> list:
    """Create one target + import revision per label; returns the targets (all or nothing)."""
    from annotation_app.annotations.models import MaskRevision, MaskSource, Target, TargetStatus
    from annotation_app.rounds.models import Round

    masks = read_label_map(case, path, name)
    if not any(mask.any() for mask in masks.values()):
        raise IngestError(f"{name} contains no labels", code="empty")
    round_ = Round.current_for(case.project_id)
    targets = []
    with transaction.atomic():
        for key, mask in masks.items():
            label = key.rsplit("#", 1)[0]
            areas = mask.reshape(mask.shape[0], -1).sum(axis=1)
            target = Target.objects.create(
                case=case,
                label=label,
                round=round_,
                status=TargetStatus.DRAFT,
                key_frame=int(np.argmax(areas)),
                created_by=author,
            )
            MaskRevision.append(
                target, mask, MaskSource.IMPORT, author=author, note=f"imported from {name}"[:500]
            )
            targets.append(target)
    return targets
