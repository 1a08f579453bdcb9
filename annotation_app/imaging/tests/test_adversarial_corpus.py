"""An adversarial corpus, generated here (no binary fixtures): what a hostile or careless user uploads.

Every file that must be refused is answered 4xx with a JSON reason, leaves no case row and no stored
file, names no server path, and makes the server read no byte outside the upload. Every file that must
be accepted ingests with the right values. New findings become new builders in these lists.

"No byte outside the upload" is proven with a sentinel: a file beside the upload's folders, reachable by
the absolute and `..` references the corpus tries. Its content must appear in no response or slice,
and its access time must not move (the test first checks that this file system updates access times;
where it does not, only the content check runs).

Classes (issue 13), built in hostile_files.py: references outside the upload (MetaImage
ElementDataFile, NRRD data file, NIfTI pairs, MINC 2 external storage and links, playlists; here also
symbolic links in the server import folder and label maps); truncated pixel data in every format;
spacing; DICOM SOP classes; sizes from headers alone (a NIfTI-2 header claiming 100000^3 voxels); every
class of test_bad_uploads.py (zip slip, bombs, NaN, sizes, mixed series) through the same checks; and,
accepted, enhanced CT with its rescale in the functional groups and single-frame colour images.
"""

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from annotation_app.imaging.models import Case
from annotation_app.imaging.tests import helpers
from annotation_app.imaging.tests.conftest import stored_files
from annotation_app.imaging.tests.hostile_files import MARKER, REFUSED, Context, Expect
from annotation_app.imaging.tests.hostile_writers import (
    colour_still,
    dicom_file,
    enhanced_ct,
    mhd,
    nrrd,
    write,
    zip_files,
)
from annotation_app.imaging.tests.test_bad_uploads import BAD_UPLOADS

pytestmark = pytest.mark.django_db


@pytest.fixture
def sentinel(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    path = folder / "secret.raw"
    path.write_bytes(MARKER * 4096)
    _age_access_time(path)
    return path


def _age_access_time(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_mtime_ns - 3_600_000_000_000, stat.st_mtime_ns))


@pytest.fixture(scope="session")
def atime_works(tmp_path_factory) -> bool:
    """Whether reading a file moves its access time here (relatime does when atime < mtime)."""
    probe = tmp_path_factory.mktemp("atime") / "probe"
    probe.write_bytes(b"x" * 10)
    _age_access_time(probe)
    before = probe.stat().st_atime_ns
    probe.read_bytes()
    return probe.stat().st_atime_ns != before


def assert_nothing_outside_was_read(sentinel: Path, atime_works: bool, *bodies: bytes) -> None:
    for body in bodies:
        assert MARKER not in body, "the content of a file outside the upload reached a response"
    if atime_works:
        stat = sentinel.stat()
        assert stat.st_atime_ns == stat.st_mtime_ns - 3_600_000_000_000, "a file outside the upload was read"


def assert_no_server_path(body: bytes, tmp_path: Path, settings) -> None:
    text = body.decode("utf-8", "replace")
    for root in (str(tmp_path), str(settings.MEDIA_ROOT), str(settings.VAR_DIR), "/tmp/"):
        assert root not in text, f"a server path ({root}) is in the answer: {text[:300]}"


def _from_bad_uploads(build):
    """test_bad_uploads' builders (zip slip, bombs, NaN, sizes, mixed series ...) in this harness."""

    def adapted(folder, ctx):
        paths, status, reason = build(folder, ctx.settings)
        return Expect(paths, status, reason)

    adapted.__name__ = f"bad_uploads.{build.__name__}"
    return adapted


@pytest.mark.parametrize("build", REFUSED + [_from_bad_uploads(b) for b in BAD_UPLOADS], ids=lambda f: f.__name__)
def test_the_file_is_refused_with_a_reason_and_nothing_is_kept_or_read_outside(
    build, client_for, manager, project, tmp_path, settings, sentinel, atime_works, django_capture_on_commit_callbacks
):
    folder = tmp_path / "input"
    folder.mkdir()
    expect = build(folder, Context(sentinel, settings))
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, *expect.paths)
    assert response.status_code == expect.status, response.content
    body = response.json()
    assert expect.reason.lower() in body["detail"].lower(), body
    if expect.code:
        assert body["code"] == expect.code, body
    assert Case.objects.count() == 0
    assert stored_files(tmp_path) == []
    assert_no_server_path(response.content, tmp_path, settings)
    assert_nothing_outside_was_read(sentinel, atime_works, response.content)


# --- files that must be accepted, and ingested exactly


def _ready_case(client, project, paths, capture) -> Case:
    with capture(execute=True):
        response = helpers.upload(client, project, *paths)
    assert response.status_code == 202, response.content
    (case,) = Case.objects.all()
    assert case.status == "ready", case.error
    return case


def _raw(client, case, index, axis="axial") -> tuple[np.ndarray, dict]:
    response = client.get(f"/api/cases/{case.pk}/slice/?axis={axis}&index={index}&format=raw")
    assert response.status_code == 200, response.content
    shape = [int(s) for s in response["X-Shape"].split(",")]
    dtype = "<i2" if response["X-Dtype"] == "int16" else "u1"
    return np.frombuffer(response.content, dtype=dtype).reshape(shape), response


def _real(slice_, response) -> np.ndarray:
    return slice_ * float(response["X-Rescale-Slope"]) + float(response["X-Rescale-Intercept"])


def test_an_mhd_with_its_raw_file_beside_it_in_a_subfolder_ingests(
    client_for, manager, project, tmp_path, sentinel, atime_works, django_capture_on_commit_callbacks
):
    volume = np.arange(2 * 3 * 4, dtype="<i2").reshape(2, 3, 4)
    header = mhd(data_file="data/scan.raw", extra="ElementSpacing = 0.5 0.5 2\n")
    zipped = zip_files(tmp_path / "scan.zip", {"scan/scan.mhd": header, "scan/data/scan.raw": volume.tobytes()})
    client = client_for(manager)
    case = _ready_case(client, project, [zipped], django_capture_on_commit_callbacks)
    assert case.shape == [2, 3, 4] and case.spacing == pytest.approx([2.0, 0.5, 0.5])
    first, response = _raw(client, case, 0)
    np.testing.assert_array_equal(_real(first, response), volume[0])
    assert_nothing_outside_was_read(sentinel, atime_works, response.content)


def test_a_detached_nrrd_beside_its_data_ingests(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    volume = np.arange(24, dtype="<i2").reshape(2, 3, 4)
    header = write(tmp_path / "in" / "scan.nhdr", nrrd(data_file="scan.raw", extra="spacings: 0.7 0.8 2\n"))
    data = write(tmp_path / "in" / "scan.raw", volume.tobytes())
    client = client_for(manager)
    case = _ready_case(client, project, [header, data], django_capture_on_commit_callbacks)
    first, response = _raw(client, case, 1)
    np.testing.assert_array_equal(_real(first, response), volume[1])


@pytest.mark.parametrize("where", ["shared", "per-frame"])
def test_an_enhanced_ct_with_its_rescale_in_the_functional_groups_has_real_hounsfield_units(
    where, client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    hu = np.random.default_rng(3).integers(-1000, 1000, size=(4, 6, 8))
    if where == "shared":
        stored = hu + 1024
        path = enhanced_ct(tmp_path / "e.dcm", stored, shared_rescale=(1.0, -1024.0), window=(40, 400))
    else:  # each frame its own slope and intercept
        rescales = [(1.0 + k, -1024.0 - 10 * k) for k in range(4)]
        stored = np.stack([(hu[k] - b) / a for k, (a, b) in enumerate(rescales)])
        hu = np.stack([np.rint(stored[k]) * a + b for k, (a, b) in enumerate(rescales)])
        path = enhanced_ct(tmp_path / "e.dcm", np.rint(stored), per_frame_rescale=rescales)
    client = client_for(manager)
    case = _ready_case(client, project, [path], django_capture_on_commit_callbacks)
    for k in range(4):
        values, response = _raw(client, case, k)
        np.testing.assert_allclose(_real(values, response), hu[k], atol=abs(float(response["X-Rescale-Slope"])))
    assert case.image_meta["value_range"] == pytest.approx([hu.min(), hu.max()], abs=1.0)
    if where == "shared":
        assert case.image_meta["dicom"]["window"] == {"level": 40.0, "width": 400.0}


@pytest.mark.parametrize("photometric", ["RGB", "YBR_FULL"])
def test_a_single_colour_frame_is_a_one_frame_colour_video_not_a_volume(
    photometric, client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    rgb = np.random.default_rng(5).integers(0, 255, size=(12, 20, 3), dtype=np.uint8)
    path = colour_still(tmp_path / "still.dcm", rgb, photometric)
    client = client_for(manager)
    case = _ready_case(client, project, [path], django_capture_on_commit_callbacks)
    assert case.kind == "video" and case.shape == [1, 12, 20, 3]
    frame, _ = _raw(client, case, 0, axis="frame")
    assert np.abs(frame.astype(int) - rgb).max() <= (0 if photometric == "RGB" else 2)


def test_the_colour_stills_of_a_series_are_one_video_in_instance_order(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    series = generate_uid()
    colours = [np.full((8, 10, 3), (40 * k, 255 - 40 * k, 7 * k), np.uint8) for k in range(3)]
    paths = [
        colour_still(
            tmp_path / "in" / f"still{k}.dcm",
            colours[k],
            instance=3 - k,
            series=series,
            sop=pydicom.uid.SecondaryCaptureImageStorage,
        )
        for k in range(3)
    ]
    client = client_for(manager)
    case = _ready_case(client, project, paths, django_capture_on_commit_callbacks)
    assert case.kind == "video" and case.shape == [3, 8, 10, 3]
    for index, k in enumerate((2, 1, 0)):
        frame, _ = _raw(client, case, index, axis="frame")
        np.testing.assert_array_equal(frame, colours[k])


def test_a_non_image_object_beside_a_series_is_skipped_by_name(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    study = tmp_path / "study"
    helpers.dicom_series(study / "ct")
    dicom_file(study / "report.dcm", pydicom.uid.BasicTextSRStorage, rows=0, modality="SR")
    zipped = helpers.zip_folder(study, tmp_path / "study.zip")
    case = _ready_case(client_for(manager), project, [zipped], django_capture_on_commit_callbacks)
    assert case.image_meta["ignored_files"] == ["report.dcm"]


# --- other ways in: the server import folder, label maps, the worker


def test_symbolic_links_in_the_server_import_folder_are_not_followed(
    client_for, manager, project, tmp_path, settings, sentinel, atime_works
):
    entry = tmp_path / "incoming" / "study"
    entry.mkdir(parents=True)
    write(entry / "scan.mhd", mhd(dims=(8, 8, 8), data_file="scan.raw"))
    (entry / "scan.raw").symlink_to(sentinel)
    write(entry / "linked.mhd", mhd(dims=(8, 8, 8), data_file="outside/secret.raw"))
    (entry / "outside").symlink_to(sentinel.parent, target_is_directory=True)
    settings.IMPORT_DIR = str(tmp_path / "incoming")
    response = client_for(manager).post(
        "/api/cases/import-folder/", {"project": project.pk, "entries": ["study"]}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "not in the upload" in response.json()["errors"]["study"]
    assert Case.objects.count() == 0 and stored_files(tmp_path) == []
    assert_no_server_path(response.content, tmp_path, settings)
    assert_nothing_outside_was_read(sentinel, atime_works, response.content)


@pytest.mark.parametrize("reference", ["absolute", "relative", "neighbour"])
def test_a_label_map_header_cannot_name_a_file_of_the_server(
    reference, client_for, annotator, volume_case, tmp_path, settings, sentinel, atime_works
):
    from annotation_app.annotations.models import Target

    ref = {"absolute": str(sentinel), "relative": "../" * 12 + str(sentinel).lstrip("/"), "neighbour": "x.raw"}
    path = write(tmp_path / "labels.mhd", mhd(dims=(30, 20, 6), element="MET_UCHAR", data_file=ref[reference]))
    with open(path, "rb") as handle:
        response = client_for(annotator).post(
            f"/api/cases/{volume_case.pk}/import-masks/", {"file": handle}, format="multipart"
        )
    assert response.status_code == 400, response.content
    assert "label map" in response.json()["detail"]
    assert Target.objects.count() == 0
    assert_no_server_path(response.content, tmp_path, settings)
    assert_nothing_outside_was_read(sentinel, atime_works, response.content)


def test_a_case_that_fails_in_the_worker_says_why_without_a_server_path(project, tmp_path, settings):
    from django.core.files.storage import default_storage

    from annotation_app.imaging.ingest import run_ingest, stage_upload

    path = helpers.nifti(tmp_path / "a.nii", np.zeros((2, 4, 4), np.int16))
    (case,) = stage_upload(project, [(path.name, path)], run="none")
    default_storage.delete(case.original_key)  # the stored original vanished (a storage fault)
    assert run_ingest(case.pk) == "failed"
    case.refresh_from_db()
    assert "FileNotFoundError" in case.error and "a.nii" in case.error
    assert str(settings.MEDIA_ROOT) not in case.error and str(tmp_path) not in case.error


def test_every_builder_writes_its_files_inside_its_own_folder(tmp_path, settings, sentinel):
    """The corpus itself must not cheat: each refused upload is made of files in its input folder."""
    for build in REFUSED:
        folder = tmp_path / build.__name__
        folder.mkdir()
        expect = build(folder, Context(sentinel, settings))
        assert expect.paths and all(folder in p.parents for p in expect.paths), build.__name__
