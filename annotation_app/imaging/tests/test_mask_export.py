"""GET /api/cases/{id}/export/ and /api/projects/{id}/export/: NIfTI on the original grid, DICOM SEG
referencing the source instances, COCO RLE + PNG for videos, the project zip."""

import io
import json
import zipfile

import highdicom as hd
import numpy as np
import pytest
import SimpleITK as sitk

from annotation_app.imaging.ingest import stage_upload
from annotation_app.imaging.storage import open_case_array
from annotation_app.imaging.tests import helpers
from annotation_app.imaging.tests.conftest import make_ready_case

pytestmark = pytest.mark.django_db


def _target_with_mask(case, mask, label="lesion"):
    from annotation_app.annotations.models import MaskRevision, Target

    target = Target.objects.create(case=case, label=label, key_frame=0)
    MaskRevision.append(target, mask, "human")
    return target


@pytest.fixture
def flipped_dicom_case(project, tmp_path):
    """A DICOM CT whose rows run toward the patient's right, so the canonical array flips x; the slice
    normal (row x column) then points inferior, so the source order along it flips z as well."""
    volume = helpers.ct_volume(shape=(5, 12, 16))
    paths = helpers.dicom_series(
        tmp_path / "s", volume, orientation=(-1.0, 0.0, 0.0, 0.0, 1.0, 0.0), origin=(50.0, -20.0, 10.0)
    )
    (case,) = stage_upload(project, [(p.name, p) for p in paths], run="sync")
    assert case.status == "ready", case.error
    # file k lies at z = 10 - 2k (canonical index 4 - k); column j at x = 50 - 0.7 j (canonical 15 - j)
    np.testing.assert_array_equal(open_case_array(case), volume[::-1, :, ::-1])
    assert case.origin == pytest.approx([50.0 - 15 * 0.7, -20.0, 2.0])
    return case


def _decode_coco(counts, height, width):
    values = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool)
    return values.reshape((height, width), order="F")


def test_the_nifti_export_lands_on_the_original_voxel_grid(client_for, annotator, flipped_dicom_case):
    mask = np.zeros((5, 12, 16), dtype=bool)
    mask[1:3, 2:5, 1:4] = True
    target = _target_with_mask(flipped_dicom_case, mask)
    response = client_for(annotator).get(f"/api/cases/{flipped_dicom_case.pk}/export/?format=nifti")
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    assert json.loads(response["X-Label-Map"]) == [{"value": 1, "target": target.pk, "label": "lesion"}]
    path = helpers.write_bytes(flipped_dicom_case, response.content, "labels.nii.gz")
    image = sitk.ReadImage(str(path))
    source = flipped_dicom_case.image_meta["source_geometry"]
    assert list(image.GetDirection()) == pytest.approx(source["direction"])
    assert list(image.GetOrigin()) == pytest.approx(source["origin"], abs=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), mask[::-1, :, ::-1].astype(np.uint16))


def test_the_dicom_seg_references_the_source_instances(client_for, annotator, flipped_dicom_case):
    mask = np.zeros((5, 12, 16), dtype=bool)
    mask[1, 4:8, 0:3] = True
    _target_with_mask(flipped_dicom_case, mask)
    response = client_for(annotator).get(f"/api/cases/{flipped_dicom_case.pk}/export/?format=dicom-seg")
    assert response.status_code == 200, response.content
    seg = hd.seg.segread(io.BytesIO(response.content))
    instances = flipped_dicom_case.image_meta["dicom"]["instances"]
    assert {uid for _, _, uid in seg.get_source_image_uids()} == set(instances)
    assert seg.StudyInstanceUID == flipped_dicom_case.study_uid
    pixels = seg.get_pixels_by_source_instance(
        instances, segment_numbers=[1], assert_missing_frames_are_empty=True
    )
    np.testing.assert_array_equal(pixels[..., 0].astype(bool), mask[::-1, :, ::-1])


def test_a_nifti_case_gets_a_synthesized_series_reference_that_stays_stable(
    client_for, annotator, project, tmp_path
):
    path = helpers.nifti(tmp_path / "mr.nii.gz", np.zeros((4, 6, 8), np.int16))
    (case,) = stage_upload(project, [(path.name, path)], modality="MR", run="sync")
    mask = np.zeros((4, 6, 8), dtype=bool)
    mask[1, 2, 3] = True
    _target_with_mask(case, mask)
    client = client_for(annotator)
    first = hd.seg.segread(io.BytesIO(client.get(f"/api/cases/{case.pk}/export/?format=dicom-seg").content))
    second = hd.seg.segread(io.BytesIO(client.get(f"/api/cases/{case.pk}/export/?format=dicom-seg").content))
    assert len(first.get_source_image_uids()) == 4
    assert first.get_source_image_uids() == second.get_source_image_uids()


def test_the_coco_export_of_a_video_holds_rle_and_png_masks(client_for, annotator, project):
    frames = np.zeros((4, 6, 10), dtype=np.uint8)
    case = make_ready_case(project, frames, kind="video", modality="US")
    mask = np.zeros((4, 6, 10), dtype=bool)
    mask[1, 1:4, 2:7] = True
    mask[3, 0, 9] = True
    target = _target_with_mask(case, mask)
    response = client_for(annotator).get(f"/api/cases/{case.pk}/export/?format=coco")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    document = json.loads(archive.read("annotations.json"))
    assert len(document["images"]) == 4
    by_frame = {a["image_id"] - 1: a for a in document["annotations"]}
    assert sorted(by_frame) == [1, 3]
    for t, annotation in by_frame.items():
        np.testing.assert_array_equal(_decode_coco(annotation["segmentation"]["counts"], 6, 10), mask[t])
        assert annotation["track_id"] == target.pk
    assert by_frame[1]["bbox"] == [2, 1, 5, 3] and by_frame[1]["area"] == 15
    assert f"masks/target_{target.pk}/frame_00003.png" in archive.namelist()


def test_videos_cannot_be_exported_as_dicom_seg(client_for, annotator, project):
    case = make_ready_case(project, np.zeros((2, 4, 4), np.uint8), kind="video", modality="US")
    _target_with_mask(case, np.ones((2, 4, 4), bool))
    response = client_for(annotator).get(f"/api/cases/{case.pk}/export/?format=dicom-seg")
    assert response.status_code == 400 and "coco" in response.json()["detail"]


def test_an_unknown_export_format_is_400(client_for, annotator, volume_case):
    response = client_for(annotator).get(f"/api/cases/{volume_case.pk}/export/?format=stl")
    assert response.status_code == 400 and "format" in response.json()["detail"]


def test_the_project_export_is_a_zip_with_a_manifest(client_for, annotator, project, volume_case):
    video = make_ready_case(project, np.zeros((2, 4, 4), np.uint8), kind="video", modality="US", name="clip")
    mask = np.zeros((6, 20, 30), bool)
    mask[0, 0, 0] = True
    volume_target = _target_with_mask(volume_case, mask)
    _target_with_mask(video, np.ones((2, 4, 4), bool))
    response = client_for(annotator).get(f"/api/projects/{project.pk}/export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    assert [c["id"] for c in manifest["cases"]] == [volume_case.pk, video.pk]
    assert manifest["cases"][0]["targets"][0]["target"] == volume_target.pk
    assert f"cases/{volume_case.pk:06d}/labels.nii.gz" in archive.namelist()
    assert f"cases/{video.pk:06d}/annotations.json" in archive.namelist()


def test_outsiders_cannot_export_a_project(client_for, outsider, project):
    assert client_for(outsider).get(f"/api/projects/{project.pk}/export/").status_code == 404


def test_targets_whose_mask_is_empty_are_left_out(client_for, annotator, volume_case):
    empty = _target_with_mask(volume_case, np.zeros((6, 20, 30), bool))
    mask = np.zeros((6, 20, 30), bool)
    mask[3, 5, 5] = True
    kept = _target_with_mask(volume_case, mask)
    response = client_for(annotator).get(f"/api/cases/{volume_case.pk}/export/?format=dicom-seg")
    assert response.status_code == 200, response.content
    assert [m["target"] for m in json.loads(response["X-Label-Map"])] == [kept.pk]
    assert empty.pk != kept.pk
