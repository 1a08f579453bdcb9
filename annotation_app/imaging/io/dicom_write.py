"""Writing a volume as a DICOM series (CT or MR Image Storage, one file per slice).

Used by the demo loader (synthetic CT goes through the normal DICOM ingest path) and by tests. The
volume is (z, y, x) in LPS with identity direction unless `orientation` is given; slice k sits at
origin + k * spacing_z along the normal. Stored values are uint16 with RescaleIntercept so that real
values (HU) = stored + intercept.
"""

import datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage}


def write_series(
    volume: np.ndarray,
    folder: Path,
    *,
    spacing=(1.0, 1.0, 1.0),
    origin=(0.0, 0.0, 0.0),
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    modality: str = "CT",
    patient_id: str = "DEMO-0001",
    patient_name: str = "Demo^Patient",
    series_description: str = "synthetic",
    study_uid: str | None = None,
    series_uid: str | None = None,
    intercept: float = -1024.0,
    transfer_syntax=ExplicitVRLittleEndian,
    positions=None,
) -> list[Path]:
    """Write `volume` (z, y, x real values, e.g. HU) with `spacing` (z, y, x) mm; return the file paths.

    `positions` overrides the ImagePositionPatient of each slice (tests use it for broken series)."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_of_reference = generate_uid()
    iop = np.asarray(orientation, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    stored = np.clip(np.rint(np.asarray(volume, dtype=np.float64) - intercept), 0, 65535).astype(np.uint16)
    now = datetime.datetime(2026, 1, 1, 12, 0, 0)
    paths = []
    for k in range(stored.shape[0]):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = _SOP_CLASS.get(modality, CTImageStorage)
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = transfer_syntax
        path = folder / f"slice_{k:04d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.Modality = modality
        ds.PatientID = patient_id
        ds.PatientName = patient_name
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.Manufacturer = "medsam2-annotate"
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = series_description
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [float(v) for v in iop]
        position = (
            positions[k] if positions is not None else np.asarray(origin, float) + k * spacing[0] * normal
        )
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.Rows, ds.Columns = int(stored.shape[1]), int(stored.shape[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = float(intercept)
        ds.RescaleSlope = 1.0
        ds.RescaleType = "HU" if modality == "CT" else "US"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = stored[k].tobytes()
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths
