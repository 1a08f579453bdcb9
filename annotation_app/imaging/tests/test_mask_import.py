"""POST /api/cases/{id}/import-masks/: label maps and DICOM SEG become targets with import revisions."""

import numpy as np
import pytest
import SimpleITK as sitk

from annotation_app.imaging.ingest import stage_upload
from annotation_app.imaging.tests import helpers
from annotation_app.imaging.tests.conftest import stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def nifti_case(project, tmp_path):
    path = helpers.nifti(tmp_path / "ct.nii.gz", np.zeros((4, 6, 8), np.int16), spacing=(0.7, 0.8, 2.0))
    (case,) = stage_upload(project, [(path.name, path)], run="sync")
    return case


def _post(client, case, path):
    with open(path, "rb") as handle:
        return client.post(f"/api/cases/{case.pk}/import-masks/", {"file": handle}, format="multipart")


def test_each_label_value_becomes_a_target_with_an_import_revision(
    client_for, annotator, nifti_case, tmp_path
):
    from annotation_app.annotations.models import Target

    labels = np.zeros((4, 6, 8), np.uint8)
    labels[1, 1:3, 1:3] = 1
    labels[2:4, 4, 5:8] = 2
    labels[3, 0, 0] = 2
    path = helpers.nifti(tmp_path / "labels.nii.gz", labels, spacing=(0.7, 0.8, 2.0))
    response = _post(client_for(annotator), nifti_case, path)
    assert response.status_code == 201, response.content
    body = response.json()["targets"]
    assert [(t["label"], t["voxel_count"], t["key_frame"]) for t in body] == [
        ("lesion", 4, 1),
        ("lesion", 7, 3),
    ]
    for value, item in zip((1, 2), body, strict=True):
        revision = Target.objects.get(pk=item["id"]).current_revision
        assert revision.source == "import" and revision.author == annotator
        np.testing.assert_array_equal(revision.mask(), labels == value)


def test_a_dicom_seg_export_imports_back_to_the_same_masks(client_for, annotator, project, tmp_path):
    from annotation_app.annotations.models import MaskRevision, Target

    paths = helpers.dicom_series(
        tmp_path / "s", helpers.ct_volume(shape=(5, 12, 16)), orientation=(-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    )
    (case,) = stage_upload(project, [(p.name, p) for p in paths], run="sync")
    mask = np.zeros((5, 12, 16), bool)
    mask[1:4, 3:6, 2:9] = True
    original = Target.objects.create(case=case, label="cyst", key_frame=2)
    MaskRevision.append(original, mask, "human")
    client = client_for(annotator)
    seg = tmp_path / "seg.dcm"
    seg.write_bytes(client.get(f"/api/cases/{case.pk}/export/?format=dicom-seg").content)
    response = _post(client, case, seg)
    assert response.status_code == 201, response.content
    (item,) = response.json()["targets"]
    assert item["label"] == "cyst"
    np.testing.assert_array_equal(Target.objects.get(pk=item["id"]).current_revision.mask(), mask)


def test_a_label_map_on_another_grid_is_refused(client_for, annotator, nifti_case, tmp_path):
    from annotation_app.annotations.models import Target

    path = helpers.nifti(tmp_path / "labels.nii.gz", np.ones((4, 6, 9), np.uint8), spacing=(0.7, 0.8, 2.0))
    response = _post(client_for(annotator), nifti_case, path)
    assert response.status_code == 400 and "voxels" in response.json()["detail"]
    assert Target.objects.count() == 0


def test_an_empty_label_map_is_refused(client_for, annotator, nifti_case, tmp_path):
    path = helpers.nifti(tmp_path / "labels.nii.gz", np.zeros((4, 6, 8), np.uint8), spacing=(0.7, 0.8, 2.0))
    response = _post(client_for(annotator), nifti_case, path)
    assert response.status_code == 400 and "no labels" in response.json()["detail"]


def test_a_file_that_is_not_a_label_map_is_refused_and_not_kept(client_for, annotator, nifti_case, tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_bytes(b"hello" * 100)
    before = stored_files(tmp_path)
    response = _post(client_for(annotator), nifti_case, path)
    assert response.status_code == 400 and "label map" in response.json()["detail"]
    assert stored_files(tmp_path) == before


def test_outsiders_cannot_import_masks(client_for, outsider, nifti_case, tmp_path):
    image = sitk.GetImageFromArray(np.ones((4, 6, 8), np.uint8))
    path = tmp_path / "l.nii.gz"
    sitk.WriteImage(image, str(path))
    assert _post(client_for(outsider), nifti_case, path).status_code == 404
