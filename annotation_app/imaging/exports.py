"""Mask exports: NIfTI label maps on the original voxel grid, DICOM SEG referencing the source series,
PNG masks + COCO RLE JSON for videos (and volumes, slice by slice), and a whole project as one zip.

Label values in a label map are per target (instance map) in target id order: value i+1 = i-th target;
`mapping` ([{value, target, label, revision}]) says which is which, and travels in the zip manifests
and the X-Label-Map header.
"""

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid

from annotation_app.imaging.io import geometry
from annotation_app.imaging.models import Case

FORMATS = ("nifti", "dicom-seg", "coco")


class ExportError(ValueError):
    pass


def canonical_geometry(case: Case) -> dict:
    """The geometry of the canonical array, (x, y, z) order as SimpleITK wants it."""
    return {
        "size": [int(s) for s in reversed(case.shape[:3])],
        "spacing": [float(s) for s in reversed(case.spacing or [1.0, 1.0, 1.0])],
        "origin": [float(o) for o in (case.origin or [0.0, 0.0, 0.0])],
        "direction": [float(d) for d in (case.direction or [1, 0, 0, 0, 1, 0, 0, 0, 1])],
    }


def source_geometry(case: Case) -> dict:
    return (case.image_meta or {}).get("source_geometry") or canonical_geometry(case)


def exported_targets(case: Case, statuses: list[str] | None = None):
    """Targets of the case whose current revision is a non-empty mask, with that revision, in id order."""
    out = []
    targets = case.targets.order_by("id")
    if statuses:
        targets = targets.filter(status__in=statuses)
    for target in targets:
        revision = target.current_revision
        if revision is not None and revision.voxel_count > 0:
            out.append((target, revision))
    return out


def label_map(case: Case, statuses=None) -> tuple[np.ndarray, list[dict]]:
    """(uint16 canonical label array, mapping); later targets win where masks overlap."""
    shape = tuple(int(s) for s in case.shape[:3])
    labels = np.zeros(shape, dtype=np.uint16)
    mapping = []
    for value, (target, revision) in enumerate(exported_targets(case, statuses), start=1):
        labels[revision.mask()] = value
        mapping.append(
            {
                "value": value,
                "target": target.pk,
                "label": target.label,
                "revision": revision.number,
                "status": target.status,
            }
        )
    return labels, mapping


def nifti_bytes(case: Case, statuses=None) -> tuple[bytes, list[dict]]:
    labels, mapping = label_map(case, statuses)
    if case.kind == "volume":
        target = source_geometry(case)
        labels = geometry.resample_to(labels, canonical_geometry(case), target)
        image = geometry.make_image(labels, target)
    else:
        image = sitk.GetImageFromArray(labels)  # videos: (t, y, x), unit spacing
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.nii.gz"
        sitk.WriteImage(image, str(path), useCompression=True)
        return path.read_bytes(), mapping


# --- DICOM SEG
def seg_reference(case: Case) -> dict | None:
    """The series a DICOM SEG of this case references: the source series when it has one instance per
    slice, else the synthesized one saved by an earlier export (None if neither exists yet)."""
    meta = case.image_meta or {}
    n_slices = int(source_geometry(case)["size"][2]) if case.shape else 0
    dicom = meta.get("dicom")
    if dicom and len(dicom.get("instances", [])) == n_slices:
        return dicom
    return meta.get("dicom_seg_reference")


def _source_datasets(case: Case) -> list[Dataset]:
    """Header-only datasets of the source slices (what highdicom needs to reference them).

    DICOM-ingested cases use the stored UIDs; other cases get a synthesized minimal series whose UIDs
    are saved on the case, so repeated exports (and SEG re-imports) refer to the same instances."""
    meta = dict(case.image_meta or {})
    grid = source_geometry(case)
    n_slices = int(grid["size"][2])
    dicom = seg_reference(case)
    if not dicom or len(dicom.get("instances", [])) != n_slices:
        dicom = {
            "instances": [generate_uid() for _ in range(n_slices)],
            "series_uid": generate_uid(),
            "StudyInstanceUID": case.study_uid or generate_uid(),
            "FrameOfReferenceUID": generate_uid(),
            "PatientID": f"CASE-{case.pk}",
            "PatientName": f"Case^{case.pk}",
            "Modality": case.modality,
            "SOPClassUID": CTImageStorage if case.modality == "CT" else MRImageStorage,
            "synthesized": True,
        }
        # kept apart from image_meta["dicom"] (the real source facts, e.g. of a multi-frame instance)
        meta["dicom_seg_reference"] = dicom
        Case.objects.filter(pk=case.pk).update(image_meta=meta)
        case.image_meta = meta
    direction = np.asarray(grid["direction"], dtype=float).reshape(3, 3)
    row_cos, col_cos, normal = direction[:, 0], direction[:, 1], direction[:, 2]
    origin = np.asarray(grid["origin"], dtype=float)
    spacing = grid["spacing"]
    out = []
    for k, sop_uid in enumerate(dicom["instances"]):
        ds = Dataset()
        ds.SOPClassUID = dicom.get("SOPClassUID") or CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = dicom.get("StudyInstanceUID") or case.study_uid or generate_uid()
        ds.SeriesInstanceUID = dicom["series_uid"]
        ds.FrameOfReferenceUID = dicom.get("FrameOfReferenceUID") or generate_uid()
        ds.Modality = dicom.get("Modality") or case.modality
        for key in (
            "PatientID",
            "PatientName",
            "PatientBirthDate",
            "PatientSex",
            "StudyID",
            "StudyDate",
            "StudyTime",
            "AccessionNumber",
            "ReferringPhysicianName",
        ):
            setattr(ds, key, dicom.get(key, "") or "")
        ds.Rows, ds.Columns = int(grid["size"][1]), int(grid["size"][0])
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.ImageOrientationPatient = [float(v) for v in (*row_cos, *col_cos)]
        ds.ImagePositionPatient = [float(v) for v in origin + k * spacing[2] * normal]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        out.append(ds)
    return out


def dicom_seg_bytes(case: Case, statuses=None) -> tuple[bytes, list[dict]]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if case.kind != "volume":
        raise ExportError("DICOM SEG export is for volumes; export videos as coco")
    items = exported_targets(case, statuses)
    if not items:
        raise ExportError("the case has no masks to export")
    sources = _source_datasets(case)
    canonical, target_grid = canonical_geometry(case), source_geometry(case)
    planes, descriptions, mapping = [], [], []
    for number, (target, revision) in enumerate(items, start=1):
        mask = geometry.resample_to(revision.mask().astype(np.uint8), canonical, target_grid)
        planes.append(mask.astype(bool))
        algorithm = (
            hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
            if revision.source == "model"
            else hd.seg.SegmentAlgorithmTypeValues.MANUAL
        )
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=f"{target.label} #{target.pk}"[:64],
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Lesion,
                algorithm_type=algorithm,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    name="MedSAM2", version="2.1-tiny", family=codes.DCM.ArtificialIntelligence
                )
                if revision.source == "model"
                else None,
                tracking_id=f"target-{target.pk}",
                tracking_uid=generate_uid(),
            )
        )
        mapping.append(
            {"value": number, "target": target.pk, "label": target.label, "revision": revision.number}
        )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.stack(planes, axis=-1),
        segmentation_type="BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=900,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="medsam2-annotate",
        manufacturer_model_name="medsam2-annotate",
        software_versions="0.1.0",
        device_serial_number="0",
        content_label="MASKS",
        omit_empty_frames=True,
    )
    buffer = io.BytesIO()
    seg.save_as(buffer)
    return buffer.getvalue(), mapping


# --- COCO + PNG
def coco_rle(mask2d: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts: column-major runs starting with background (pycocotools order)."""
    flat = np.asarray(mask2d, dtype=np.uint8).reshape(-1, order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    return ([0] + runs) if flat[0] else runs


def write_coco(case: Case, archive: zipfile.ZipFile, prefix: str = "", statuses=None) -> list[dict]:
    """annotations.json (COCO, one image per frame/slice, RLE per target per frame) + PNG masks."""
    items = exported_targets(case, statuses)
    height, width = int(case.shape[1]), int(case.shape[2])
    label_names = [label["name"] for label in case.project.labels] or ["object"]
    for target, _ in items:
        if target.label not in label_names:
            label_names.append(target.label)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(label_names)]
    images = [
        {"id": t + 1, "file_name": f"frame_{t:05d}.png", "frame_index": t, "width": width, "height": height}
        for t in range(int(case.shape[0]))
    ]
    annotations: list[dict] = []
    mapping: list[dict] = []
    for target, revision in items:
        mask = revision.mask()
        frames = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
        for t in frames:
            plane = mask[t]
            ys, xs = np.nonzero(plane)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(t) + 1,
                    "category_id": label_names.index(target.label) + 1,
                    "segmentation": {"size": [height, width], "counts": coco_rle(plane)},
                    "area": int(plane.sum()),
                    "iscrowd": 0,
                    "bbox": [
                        int(xs.min()),
                        int(ys.min()),
                        int(xs.max() - xs.min() + 1),
                        int(ys.max() - ys.min() + 1),
                    ],
                    "track_id": target.pk,
                    "attributes": {"target": target.pk, "revision": revision.number},
                }
            )
            png = io.BytesIO()
            Image.fromarray(plane.astype(np.uint8) * 255).save(png, format="PNG")
            archive.writestr(f"{prefix}masks/target_{target.pk}/frame_{int(t):05d}.png", png.getvalue())
        mapping.append(
            {
                "target": target.pk,
                "label": target.label,
                "revision": revision.number,
                "frames": [int(t) for t in frames],
            }
        )
    document = {
        "info": {"description": f"case {case.pk} {case.name}", "frame_rate": case.frame_rate},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    archive.writestr(f"{prefix}annotations.json", json.dumps(document))
    return mapping


def coco_zip_bytes(case: Case, statuses=None) -> tuple[bytes, list[dict]]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        mapping = write_coco(case, archive, statuses=statuses)
    return buffer.getvalue(), mapping


def export_case(case: Case, fmt: str, statuses=None) -> tuple[bytes, str, str, list[dict]]:
    """(body, content type, file name, mapping) of one case export."""
    stem = f"case_{case.pk}"
    if fmt == "nifti":
        body, mapping = nifti_bytes(case, statuses)
        return body, "application/gzip", f"{stem}_labels.nii.gz", mapping
    if fmt == "dicom-seg":
        body, mapping = dicom_seg_bytes(case, statuses)
        return body, "application/dicom", f"{stem}_seg.dcm", mapping
    if fmt == "coco":
        body, mapping = coco_zip_bytes(case, statuses)
        return body, "application/zip", f"{stem}_coco.zip", mapping
    raise ExportError(f"format must be one of {', '.join(FORMATS)}")


def project_zip(project, statuses=None, progress=None):
    """A temporary file holding the project's zip (manifest.json + per case NIfTI or COCO); the caller
    streams and closes it. `progress(fraction)` is called after each case (export jobs show it)."""
    handle = tempfile.TemporaryFile()
    manifest: dict = {
        "project": {"id": project.pk, "name": project.name, "labels": project.labels},
        "cases": [],
    }
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        cases = list(Case.objects.filter(project=project, status__in=["ready", "archived"]).order_by("id"))
        for done, case in enumerate(cases):
            if progress is not None:
                progress(done / max(1, len(cases)))
            folder = f"cases/{case.pk:06d}/"
            entry = {
                "id": case.pk,
                "name": case.name,
                "kind": case.kind,
                "modality": case.modality,
                "shape": case.shape,
                "spacing": case.spacing,
                "study_uid": case.study_uid,
                "series_uid": case.series_uid,
                "original": (case.image_meta or {}).get("original_name"),
            }
            if case.kind == "volume":
                body, mapping = nifti_bytes(case, statuses)
                archive.writestr(folder + "labels.nii.gz", body)
                entry["labels"] = folder + "labels.nii.gz"
            else:
                mapping = write_coco(case, archive, prefix=folder, statuses=statuses)
                entry["labels"] = folder + "annotations.json"
            entry["targets"] = mapping
            manifest["cases"].append(entry)
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
    size = handle.tell()
    handle.seek(0)
    return handle, size
