"""PACS tests: files under a per-test folder, a real Orthanc per test, synthetic DICOM series."""

import numpy as np
import pydicom
import pytest

from annotation_app.imaging.io.dicom_write import write_series
from annotation_app.pacs.tests.orthanc import start_orthanc


@pytest.fixture(autouse=True)
def pacs_storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"
    return tmp_path


@pytest.fixture
def orthanc(tmp_path):
    server = start_orthanc(tmp_path / "orthanc")
    try:
        yield server
    finally:
        server.stop()


def ct_volume(shape=(6, 24, 32), seed=0) -> np.ndarray:
    """A small HU volume with a bright cube (values exactly representable after the ingest)."""
    rng = np.random.default_rng(seed)
    volume = rng.integers(-100, 100, size=shape).astype(np.int16)
    volume[2:4, 8:16, 10:20] = 300
    return volume


def synthetic_study(folder, volume, *, accession="", study_description="", **kwargs) -> list:
    """A DICOM series on disk (one file per slice) with the study-level attributes searches look for."""
    paths = write_series(volume, folder, spacing=kwargs.pop("spacing", (2.0, 0.8, 0.7)), **kwargs)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.AccessionNumber = accession
        ds.StudyDescription = study_description
        ds.save_as(path, enforce_file_format=True)
    return paths
