"""DICOM reading: compressed transfer syntaxes, rescale to real units, multi-frame cine as video,
series without geometry."""

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, RLELossless, UltrasoundMultiFrameImageStorage, generate_uid

from annotation_app.imaging.ingest import load_source
from annotation_app.imaging.io.discover import discover
from annotation_app.imaging.limits import Limits
from annotation_app.imaging.tests import helpers


def _load_all(root):
    limits = Limits.current()
    sources, _ = discover(root, limits)
    return [(source, load_source(root, source, source.modality, limits)) for source in sources]


def _cine(path, frames: np.ndarray, jpeg: bool = False, frame_time_ms: float = 40.0):
    """A multi-frame ultrasound file: frames (t, y, x) grey or (t, y, x, 3) RGB uint8."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else pydicom.uid.ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "US"
    ds.PatientID = "P"
    ds.NumberOfFrames = frames.shape[0]
    ds.FrameTime = frame_time_ms
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    rgb = frames.ndim == 4
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if jpeg:
        encoded = []
        for frame in frames:
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, format="JPEG", quality=98)
            encoded.append(buffer.getvalue())
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_an_rle_compressed_series_reads_like_the_uncompressed_one(tmp_path):
    volume = helpers.ct_volume()
    paths = helpers.dicom_series(tmp_path / "s", volume)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless)
        ds.save_as(path, enforce_file_format=True)
    ((source, loaded),) = _load_all(tmp_path)
    np.testing.assert_array_equal(loaded.array, volume)


def test_rescale_slope_and_intercept_give_real_units(tmp_path):
    real = np.linspace(-1000.0, 500.0, 6 * 24 * 32).reshape(6, 24, 32)
    paths = helpers.dicom_series(tmp_path / "s", np.zeros((6, 24, 32)), intercept=0.0)
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = 0.5, -1000.0
        ds.PixelData = np.rint((real[k] + 1000.0) / 0.5).astype(np.uint16).tobytes()
        ds.save_as(path, enforce_file_format=True)
    ((_, loaded),) = _load_all(tmp_path)
    rescale = loaded.meta["rescale"]
    decoded = loaded.array * rescale["slope"] + rescale["intercept"]
    assert np.abs(decoded - real).max() <= 0.5 + rescale["slope"]
    assert loaded.meta["value_range"] == pytest.approx([-1000.0, 500.0], abs=0.5)


def test_a_jpeg_ultrasound_cine_becomes_a_video_with_its_frame_rate(tmp_path):
    frames = np.zeros((4, 16, 24), dtype=np.uint8)
    for t in range(4):
        frames[t, 4:12, 2 + 4 * t : 10 + 4 * t] = 220
    _cine(tmp_path / "cine.dcm", frames, jpeg=True, frame_time_ms=40.0)
    ((source, loaded),) = _load_all(tmp_path)
    assert source.kind == "video" and source.modality == "US"
    assert loaded.array.shape == (4, 16, 24)
    assert loaded.frame_rate == pytest.approx(25.0)
    assert np.abs(loaded.array.astype(int) - frames).mean() < 4


def test_an_rgb_cine_keeps_its_colours(tmp_path):
    frames = np.random.default_rng(1).integers(0, 255, size=(3, 8, 10, 3), dtype=np.uint8)
    _cine(tmp_path / "rgb.dcm", frames)
    ((_, loaded),) = _load_all(tmp_path)
    np.testing.assert_array_equal(loaded.array, frames)


def test_slices_without_geometry_are_ordered_by_instance_number(tmp_path):
    volume = helpers.ct_volume(shape=(3, 8, 8))
    paths = helpers.dicom_series(tmp_path / "s", volume)
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        del ds.ImageOrientationPatient
        ds.InstanceNumber = 3 - k  # reversed on purpose
        ds.save_as(path, enforce_file_format=True)
    ((_, loaded),) = _load_all(tmp_path)
    np.testing.assert_array_equal(loaded.array, volume[::-1])
    assert loaded.spacing[0] == pytest.approx(2.0)  # from SliceThickness


def test_an_enhanced_multiframe_ct_is_a_volume_sorted_by_frame_position(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedCTImageStorage

    volume = helpers.ct_volume(shape=(4, 6, 8))
    stored_order = [2, 0, 3, 1]  # frames stored out of position order
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    path = tmp_path / "enhanced.dcm"
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "CT", "P"
    ds.NumberOfFrames, ds.Rows, ds.Columns = 4, 6, 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.6], 3.0
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = (
        Sequence([orientation]),
        Sequence([measures]),
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    groups = []
    for k in stored_order:
        group, position = Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, 3.0 * k]
        group.PlanePositionSequence = Sequence([position])
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.PixelData = volume[stored_order].astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    ((source, loaded),) = _load_all(tmp_path)
    assert source.kind == "volume"
    np.testing.assert_array_equal(loaded.array, volume)
    assert loaded.spacing == pytest.approx([3.0, 0.5, 0.6])


def _structured_report(path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.BasicTextSRStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID, ds.Modality = generate_uid(), "SR"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_non_image_dicom_objects_in_a_study_are_ignored(tmp_path):
    helpers.dicom_series(tmp_path / "study" / "ct")
    _structured_report(tmp_path / "study" / "report.dcm")
    sources, ignored = discover(tmp_path / "study", Limits.current())
    assert [s.kind for s in sources] == ["volume"]
    assert ignored == ["report.dcm"]


def test_an_upload_of_only_non_image_dicom_has_no_images(tmp_path):
    from annotation_app.imaging.io.errors import IngestError

    _structured_report(tmp_path / "report.dcm")
    with pytest.raises(IngestError, match="no images found") as info:
        discover(tmp_path, Limits.current())
    assert info.value.status == 415
