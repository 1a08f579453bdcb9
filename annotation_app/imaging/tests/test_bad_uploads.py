"""Every malformed upload is answered 4xx with a JSON reason, and leaves no Case row and no file behind."""

import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate

from annotation_app.imaging.models import Case
from annotation_app.imaging.tests import helpers
from annotation_app.imaging.tests.conftest import stored_files

pytestmark = pytest.mark.django_db


def _zip_with(tmp_path, entries, name="bad.zip"):
    """entries: (ZipInfo or name, bytes)."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def _series(tmp_path, **kwargs):
    return helpers.dicom_series(tmp_path / "series", **kwargs)


def corrupt_dicom(tmp_path, settings):
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"this is not a dicom file at all" * 10)
    return [path], 400, "not a"


def unknown_file_type(tmp_path, settings):
    path = tmp_path / "report.docx"
    path.write_bytes(b"PK-but-not-really" * 10)
    return [path], 415, "unsupported file type"


def dicom_without_pixel_data(tmp_path, settings):
    paths = _series(tmp_path)
    ds = pydicom.dcmread(paths[2])
    del ds.PixelData
    ds.save_as(paths[2], enforce_file_format=True)
    return paths, 400, "no pixel data"


def inconsistent_slice_spacing(tmp_path, settings):
    positions = [(0, 0, z) for z in (0.0, 2.0, 4.0, 8.0, 10.0, 12.0)]
    return _series(tmp_path, positions=positions), 400, "inconsistent slice spacing"


def duplicate_slice_positions(tmp_path, settings):
    positions = [(0, 0, z) for z in (0.0, 2.0, 2.0, 4.0, 6.0, 8.0)]
    return _series(tmp_path, positions=positions), 400, "same position"


def mixed_orientations(tmp_path, settings):
    paths = _series(tmp_path)
    ds = pydicom.dcmread(paths[1])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(paths[1], enforce_file_format=True)
    return paths, 400, "mixes slice orientations"


def unsupported_transfer_syntax(tmp_path, settings):
    paths = _series(tmp_path)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.UID("1.2.840.10008.1.2.4.100")  # MPEG2: no decoder
        ds.PixelData = encapsulate([ds.PixelData])
        ds.save_as(path, enforce_file_format=True)
    return paths, 415, "transfer syntax"


def zip_entry_with_absolute_path(tmp_path, settings):
    return [_zip_with(tmp_path, [("/etc/cron.d/evil", b"x")])], 400, "absolute path"


def zip_entry_with_parent_path(tmp_path, settings):
    return [_zip_with(tmp_path, [("ok/../../evil.dcm", b"x")])], 400, "outside the archive"


def zip_entry_that_is_a_symlink(tmp_path, settings):
    link = zipfile.ZipInfo("series/link.dcm")
    link.external_attr = 0o120777 << 16
    return [_zip_with(tmp_path, [(link, b"/etc/passwd")])], 400, "symbolic link"


def zip_bomb_by_ratio(tmp_path, settings):
    return [_zip_with(tmp_path, [("zeros.dcm", b"\0" * (4 * 1024 * 1024))])], 413, "compression ratio"


def zip_bomb_by_total_size(tmp_path, settings):
    settings.IMPORT_MAX_UNCOMPRESSED_BYTES = 10_000
    entries = [
        (f"f{i}.dcm", bytes(np.random.default_rng(i).integers(0, 255, 4000, dtype=np.uint8)))
        for i in range(3)
    ]
    return [_zip_with(tmp_path, entries)], 413, "expands to more than"


def zip_with_too_many_entries(tmp_path, settings):
    settings.IMPORT_MAX_FILES = 3
    return [_zip_with(tmp_path, [(f"f{i}.dcm", b"x") for i in range(5)])], 413, "entries"


def corrupt_zip(tmp_path, settings):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"garbage" * 50)
    return [path], 400, "corrupt"


def image_over_the_dimension_limit(tmp_path, settings):
    settings.IMPORT_MAX_DIM = 16
    return _series(tmp_path), 413, "limit"


def volume_over_the_voxel_limit(tmp_path, settings):
    settings.IMPORT_MAX_VOXELS = 1000
    return [helpers.nifti(tmp_path / "big.nii", np.zeros((4, 20, 20), np.int16))], 413, "voxels"


def nifti_with_nan(tmp_path, settings):
    array = np.ones((3, 4, 5), np.float32)
    array[1, 2, 3] = np.nan
    return [helpers.nifti(tmp_path / "nan.nii.gz", array)], 400, "NaN"


def nifti_with_infinity(tmp_path, settings):
    array = np.ones((3, 4, 5), np.float64)
    array[0, 0, 0] = np.inf
    return [helpers.nifti(tmp_path / "inf.nii.gz", array)], 400, "infinite"


def four_dimensional_nifti(tmp_path, settings):
    return [helpers.nifti(tmp_path / "4d.nii.gz", np.zeros((2, 3, 4, 5), np.int16))], 415, "4D"


def corrupt_nifti(tmp_path, settings):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    return [path], 400, "not a readable image"


def corrupt_video(tmp_path, settings):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\0\0\0\x18ftypmp42" + b"junk" * 100)
    return [path], 400, "video"


def frames_of_different_sizes(tmp_path, settings):
    entries = [
        ("clip/0.png", helpers.png_bytes(np.zeros((8, 8), np.uint8))),
        ("clip/1.png", helpers.png_bytes(np.zeros((8, 10), np.uint8))),
    ]
    return [_zip_with(tmp_path, entries)], 400, "first frame"


def empty_file(tmp_path, settings):
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    return [path], 400, "empty"


def upload_over_the_size_limit(tmp_path, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1000
    return _series(tmp_path), 413, "larger than"


BAD_UPLOADS = [
    corrupt_dicom,
    unknown_file_type,
    dicom_without_pixel_data,
    inconsistent_slice_spacing,
    duplicate_slice_positions,
    mixed_orientations,
    unsupported_transfer_syntax,
    zip_entry_with_absolute_path,
    zip_entry_with_parent_path,
    zip_entry_that_is_a_symlink,
    zip_bomb_by_ratio,
    zip_bomb_by_total_size,
    zip_with_too_many_entries,
    corrupt_zip,
    image_over_the_dimension_limit,
    volume_over_the_voxel_limit,
    nifti_with_nan,
    nifti_with_infinity,
    four_dimensional_nifti,
    corrupt_nifti,
    corrupt_video,
    frames_of_different_sizes,
    empty_file,
    upload_over_the_size_limit,
]


@pytest.mark.parametrize("build", BAD_UPLOADS, ids=lambda f: f.__name__)
def test_it_rejects_the_bad_upload_and_leaves_nothing_behind(
    build, client_for, manager, project, tmp_path, settings, django_capture_on_commit_callbacks
):
    (tmp_path / "input").mkdir()
    paths, expected_status, reason = build(tmp_path / "input", settings)
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, *paths)
    assert response.status_code == expected_status, response.content
    body = response.json()
    assert reason.lower() in body["detail"].lower(), body
    assert Case.objects.count() == 0
    assert stored_files(tmp_path) == []


def test_it_rejects_an_upload_without_a_file(client_for, manager, project):
    response = client_for(manager).post("/api/cases/upload/", {"project": project.pk}, format="multipart")
    assert response.status_code == 400
    assert "no file" in response.json()["detail"]
    assert Case.objects.count() == 0


def test_it_rejects_unknown_form_fields(client_for, manager, project, tmp_path):
    path = helpers.nifti(tmp_path / "a.nii", np.zeros((2, 4, 4), np.int16))
    response = helpers.upload(client_for(manager), project, path, colour="blue")
    assert response.status_code == 400
    assert "colour" in response.json()["errors"]


def test_it_rejects_an_unknown_modality(client_for, manager, project, tmp_path):
    path = helpers.nifti(tmp_path / "a.nii", np.zeros((2, 4, 4), np.int16))
    response = helpers.upload(client_for(manager), project, path, modality="XR")
    assert response.status_code == 400
    assert "modality" in response.json()["detail"]
    assert Case.objects.count() == 0
