"""Every valid volume variant of the corpus (tests/volume_corpus.py) ingests through the upload API with
exactly the values (after the file's scaling), spacing, origin and direction that its trusted reader
gives, and the NIfTI export of a mask imported onto it lands on the file's own voxel grid (same affine).

Valid files that are refused say why (a test per reason at the end)."""

import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from annotation_app.imaging.models import Case
from annotation_app.imaging.storage import open_case_array
from annotation_app.imaging.tests import helpers
from annotation_app.imaging.tests import volume_corpus as corpus
from annotation_app.imaging.tests.conftest import stored_files

pytestmark = pytest.mark.django_db


def _case_affine(case) -> np.ndarray:
    """Canonical voxel index (x, y, z) -> LPS mm, from the case's stored geometry."""
    out = np.eye(4)
    direction = np.asarray(case.direction, dtype=float).reshape(3, 3)
    out[:3, :3] = direction @ np.diag(list(reversed(case.spacing)))
    out[:3, 3] = case.origin
    return out


def _geometry_affine(grid: dict) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = np.asarray(grid["direction"], dtype=float).reshape(3, 3) @ np.diag(grid["spacing"])
    out[:3, 3] = grid["origin"]
    return out


def assert_ingested_exactly(case, values: np.ndarray, affine: np.ndarray, exact: bool) -> None:
    """The canonical array is a pure permutation/flip of the file's voxel grid (same world positions),
    and each voxel holds the file's real value."""
    stored = open_case_array(case)
    # canonical index -> source index must be a signed permutation with integer offsets
    to_source = np.linalg.inv(affine) @ _case_affine(case)
    permutation = np.rint(to_source)
    np.testing.assert_allclose(to_source, permutation, atol=1e-3, err_msg="not the file's voxel grid")
    assert sorted(np.abs(permutation[:3, :3]).sum(axis=0).tolist()) == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(_case_affine(case), affine @ permutation, atol=2e-5, err_msg="geometry differs")
    z, y, x = np.indices(stored.shape)
    index = np.stack([x.ravel(), y.ravel(), z.ravel(), np.ones(x.size)])
    i, j, k = (permutation @ index)[:3].astype(int)
    assert i.min() >= 0 and j.min() >= 0 and k.min() >= 0
    expected = values[i, j, k].reshape(stored.shape)
    rescale = case.image_meta["rescale"]
    real = stored.astype(np.float64) * rescale["slope"] + rescale["intercept"]
    if exact:
        np.testing.assert_allclose(real, expected, rtol=1e-12, atol=1e-9)
    else:  # int16 storage of fractional data: within half a step of 1/65535 of the range
        step = (expected.max() - expected.min()) / 65535
        assert rescale["slope"] <= step * (1 + 1e-9)
        assert np.abs(real - expected).max() <= step / 2 * (1 + 1e-6)
    grid = case.image_meta["source_geometry"]
    assert grid["size"] == list(values.shape)
    np.testing.assert_allclose(_geometry_affine(grid), affine, atol=2e-5)


def _label_map(values: np.ndarray) -> np.ndarray:
    labels = np.zeros(values.shape, dtype=np.uint8)
    labels[1:3, 2:5, : max(1, values.shape[2] // 2)] = 1
    labels[-1, -1, -1] = 2
    labels[0, -2, 0] = 2
    return labels


def _write_on_grid(labels: np.ndarray, affine: np.ndarray, path):
    """A label map on the file's grid, as a tool that read the file (ITK-SNAP, Slicer) would save it."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(labels.transpose(2, 1, 0)))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(d) for d in (affine[:3, :3] / spacing).reshape(-1)])
    image.SetOrigin([float(o) for o in affine[:3, 3]])
    sitk.WriteImage(image, str(path))
    return path


def _upload(client, project, built: corpus.Built, tmp_path):
    if built.zip_folder:
        return helpers.upload(client, project, corpus.zip_files(built, tmp_path / "upload.zip"), modality="MR")
    return helpers.upload(client, project, *built.files, modality="MR")


@pytest.mark.parametrize("variant", corpus.VARIANTS, ids=lambda v: v.id)
def test_the_variant_ingests_exactly_and_a_mask_exports_onto_its_grid(
    variant, client_for, manager, annotator, project, tmp_path, django_capture_on_commit_callbacks
):
    folder = tmp_path / "in"
    folder.mkdir()
    built = variant.build(folder)
    # the trusted reader reads back what was written (so the corpus itself is right)
    values, affine = corpus.read_trusted(built)
    np.testing.assert_allclose(values, built.values, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(affine, built.affine, atol=1e-5)

    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client_for(manager), project, built, tmp_path)
    assert response.status_code == 202, response.content
    (item,) = response.json()
    case = Case.objects.get(pk=item["id"])
    assert case.status == "ready", case.error
    assert_ingested_exactly(case, values, affine, built.exact)

    # a mask on the file's grid goes in, and its NIfTI export comes out on the same grid
    labels = _label_map(values)
    path = _write_on_grid(labels, affine, tmp_path / "labels.nii.gz")
    client = client_for(annotator)
    with open(path, "rb") as handle:
        imported = client.post(f"/api/cases/{case.pk}/import-masks/", {"file": handle}, format="multipart")
    assert imported.status_code == 201, imported.content
    response = client.get(f"/api/cases/{case.pk}/export/?format=nifti")
    assert response.status_code == 200
    assert [m["value"] for m in json.loads(response["X-Label-Map"])] == [1, 2]
    exported = helpers.write_bytes(case, response.content, "labels.nii.gz")
    _assert_on_grid(exported, labels, affine)


def _assert_on_grid(path, labels: np.ndarray, affine: np.ndarray) -> None:
    import nibabel as nib

    image = nib.load(str(path))  # FSLeyes' reading (sform first)
    np.testing.assert_allclose(corpus.RAS_TO_LPS @ image.affine, affine, atol=1e-4)
    data = np.asanyarray(image.dataobj)
    np.testing.assert_array_equal(data.reshape(labels.shape), labels)
    again = sitk.ReadImage(str(path))  # ITK-SNAP's and Slicer's reading
    np.testing.assert_allclose(again.GetOrigin(), affine[:3, 3], atol=1e-4)
    np.testing.assert_allclose(
        np.asarray(again.GetDirection()).reshape(3, 3) @ np.diag(again.GetSpacing()), affine[:3, :3], atol=1e-4
    )


# --- valid files that are refused, each with its reason


def _nibabel_test_file(name: str):
    import nibabel

    path = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", name)
    if not os.path.exists(path):
        pytest.fail(f"nibabel's test file {name} is missing (the pinned nibabel wheel ships it)", pytrace=False)
    return path


def sheared_sform_only(folder, settings):
    sform = corpus.affine()
    sform[0, 1] = 0.3
    return corpus.write_nifti(folder / "shear.nii", corpus.values_for("int16"), sform=sform), 415, "sheared"


def analyze_pair(folder, settings):
    import nibabel as nib

    nib.save(nib.AnalyzeImage(corpus.values_for("int16"), corpus.affine()), str(folder / "old.hdr"))
    # the header check (io/volume_headers.py) or the nibabel reader, whichever looks first, says why
    return [folder / "old.hdr", folder / "old.img"], (400, 415), ("not a NIfTI file", "Analyze 7.5")


def mgh_with_frames(folder, settings):
    import nibabel as nib

    data = np.zeros((4, 5, 6, 3), np.float32)
    nib.save(nib.MGHImage(data, corpus.affine()), str(folder / "dwi.mgz"))
    return [folder / "dwi.mgz"], 415, "4D"


def mgz_with_nan(folder, settings):
    import nibabel as nib

    data = corpus.values_for("float32")
    data[1, 2, 3] = np.nan
    nib.save(nib.MGHImage(data, corpus.affine()), str(folder / "nan.mgz"))
    return [folder / "nan.mgz"], 400, "1 NaN or infinite"


def truncated_mgh(folder, settings):
    import nibabel as nib

    nib.save(nib.MGHImage(corpus.values_for("int16"), corpus.affine()), str(folder / "cut.mgh"))
    blob = (folder / "cut.mgh").read_bytes()
    (folder / "cut.mgh").write_bytes(blob[: len(blob) // 2])
    return [folder / "cut.mgh"], 400, "truncated"


def minc_with_infinity(folder, settings):
    files = corpus.minc2_variant(dtype="float32")(folder).files
    import h5py

    with h5py.File(files[0], "r+") as f:
        f["minc-2.0/image/0/image"][0, 0, 0] = np.inf
    return files, 400, "1 NaN or infinite"


def minc_over_the_voxel_limit(folder, settings):
    settings.IMPORT_MAX_VOXELS = 100
    return corpus.minc1_variant()(folder).files, 413, "voxels"


def nifti2_over_the_dimension_limit(folder, settings):
    settings.IMPORT_MAX_DIM = 4
    return corpus.nifti_variant(version=2)(folder).files, 413, "limit"


def spm_volume_with_nan_outside_its_field_of_view(folder, settings):
    """A real big-endian float32 file (nibabel's test data): its 153 NaN are really stored, nibabel
    reads them too; an ordinary big-endian float32 file ingests (corpus: nifti1-big-endian-float32)."""
    shutil.copy(_nibabel_test_file("resampled_anat_moved.nii"), folder / "resampled.nii")
    return [folder / "resampled.nii"], 400, "153 NaN or infinite"


REFUSED = [
    sheared_sform_only,
    analyze_pair,
    mgh_with_frames,
    mgz_with_nan,
    truncated_mgh,
    minc_with_infinity,
    minc_over_the_voxel_limit,
    nifti2_over_the_dimension_limit,
    spm_volume_with_nan_outside_its_field_of_view,
]


@pytest.mark.parametrize("build", REFUSED, ids=lambda f: f.__name__)
def test_a_valid_file_that_cannot_be_ingested_is_refused_with_its_reason(
    build, client_for, manager, project, tmp_path, settings, django_capture_on_commit_callbacks
):
    folder = tmp_path / "in"
    folder.mkdir()
    paths, status, reason = build(folder, settings)
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, *paths)
    statuses, reasons = (status, reason) if isinstance(status, tuple) else ((status,), (reason,))
    assert response.status_code in statuses, response.content
    assert any(r.lower() in response.json()["detail"].lower() for r in reasons), response.json()
    assert Case.objects.count() == 0
    assert stored_files(tmp_path) == []


def test_an_analyze_header_is_refused_by_the_nibabel_reader_for_its_missing_orientation(tmp_path):
    import nibabel as nib

    from annotation_app.imaging.io import nibabel_io
    from annotation_app.imaging.io.errors import IngestError
    from annotation_app.imaging.limits import Limits

    nib.save(nib.AnalyzeImage(corpus.values_for("int16"), corpus.affine()), str(tmp_path / "old.hdr"))
    assert nibabel_io.claims(tmp_path / "old.hdr", "old.hdr")
    with pytest.raises(IngestError, match="Analyze 7.5 header, which does not say how the image is oriented"):
        nibabel_io.probe(tmp_path, "old.hdr", Limits.current())


def test_real_files_from_nibabels_test_data_ingest_like_nibabel_reads_them(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    """Files other software wrote: big-endian int16 and float32 NIfTI-1, MINC1 and MINC2 with scaling."""
    import nibabel as nib

    for name in ("anatomical.nii", "reoriented_anat_moved.nii", "minc1_1_scale.mnc", "minc2_1_scale.mnc"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(_nibabel_test_file(name), folder / name)
        image = nib.load(str(folder / name))
        values = np.asanyarray(image.dataobj, dtype=np.float64)
        with django_capture_on_commit_callbacks(execute=True):
            response = helpers.upload(client_for(manager), project, folder / name, modality="MR")
        assert response.status_code == 202, response.content
        case = Case.objects.get(pk=response.json()[0]["id"])
        assert case.status == "ready", case.error
        exact = values.min() == values.max() or bool(np.all(np.mod(values, 1) == 0))
        assert_ingested_exactly(case, values, corpus.RAS_TO_LPS @ image.affine, exact)
