"""POST /api/cases/upload/: valid uploads become ready cases with geometry; permissions hold."""

import numpy as np
import pytest

from annotation_app.imaging.models import Case
from annotation_app.imaging.storage import open_case_array
from annotation_app.imaging.tests import helpers
from annotation_app.lib import tasks

pytestmark = pytest.mark.django_db


def test_it_turns_a_zipped_dicom_series_into_a_ready_ct_case(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    volume = helpers.ct_volume()
    helpers.dicom_series(tmp_path / "series", volume, origin=(-10.0, 5.0, 100.0))
    archive = helpers.zip_folder(tmp_path / "series", tmp_path / "ct.zip", prefix="study/")
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, archive)
    assert response.status_code == 202, response.content
    assert len(response.json()) == 1
    case = Case.objects.get(pk=response.json()[0]["id"])
    assert case.status == "ready", case.error
    assert case.modality == "CT" and case.kind == "volume"
    assert case.shape == [6, 24, 32]
    assert case.spacing == pytest.approx([2.0, 0.8, 0.7])
    assert case.origin == pytest.approx([-10.0, 5.0, 100.0])
    assert case.progress == 1.0
    assert len(case.image_meta["dicom"]["instances"]) == 6
    np.testing.assert_array_equal(open_case_array(case), volume)


def test_it_accepts_many_dicom_files_in_shuffled_order_and_sorts_them_by_position(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    volume = helpers.ct_volume()
    paths = helpers.dicom_series(tmp_path / "series", volume)
    shuffled = [paths[i] for i in (3, 0, 5, 1, 4, 2)]
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, *shuffled, name="loose files")
    assert response.status_code == 202, response.content
    case = Case.objects.get(pk=response.json()[0]["id"])
    assert case.name == "loose files"
    assert case.original_key.endswith("upload.zip")
    np.testing.assert_array_equal(open_case_array(case), volume)


def test_it_makes_one_case_per_series_in_an_archive(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    helpers.dicom_series(tmp_path / "both" / "a", helpers.ct_volume(seed=1))
    helpers.dicom_series(tmp_path / "both" / "b", helpers.ct_volume(shape=(4, 16, 16), seed=2))
    archive = helpers.zip_folder(tmp_path / "both", tmp_path / "two.zip")
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, archive)
    assert response.status_code == 202
    shapes = sorted(tuple(Case.objects.get(pk=c["id"]).shape) for c in response.json())
    assert shapes == [(4, 16, 16), (6, 24, 32)]
    assert len({c["original_key"] for c in Case.objects.values("original_key")}) == 1


def test_it_reorients_a_nifti_volume_to_lps(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    array = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    # x axis pointing to the patient's right (RAS-like first axis): canonical order flips x.
    path = helpers.nifti(tmp_path / "mr.nii.gz", array, direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1))
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, path, modality="MR")
    assert response.status_code == 202, response.content
    case = Case.objects.get(pk=response.json()[0]["id"])
    assert case.status == "ready" and case.modality == "MR"
    assert case.direction == pytest.approx([1, 0, 0, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(open_case_array(case), array[:, :, ::-1])
    assert case.image_meta["source_geometry"]["direction"][0] == -1


def test_it_ingests_an_mp4_as_a_grey_video_with_its_frame_rate(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    frames = np.zeros((5, 32, 48), dtype=np.uint8)
    for t in range(5):
        frames[t, 8:24, 4 + 6 * t : 20 + 6 * t] = 200
    path = helpers.mp4(tmp_path / "echo.mp4", frames, fps=12)
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, path, modality="US")
    case = Case.objects.get(pk=response.json()[0]["id"])
    assert case.status == "ready", case.error
    assert case.kind == "video" and case.shape == [5, 32, 48]
    assert case.frame_rate == pytest.approx(12.0)
    assert np.abs(open_case_array(case).astype(int) - frames).mean() < 3


def test_it_ingests_zipped_png_frames_in_natural_order_as_rgb(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    folder = tmp_path / "frames" / "clip"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(11, 16, 20, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        (folder / f"frame{t}.png").write_bytes(helpers.png_bytes(frame))
    archive = helpers.zip_folder(tmp_path / "frames", tmp_path / "frames.zip")
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, archive, modality="ES")
    case = Case.objects.get(pk=response.json()[0]["id"])
    assert case.shape == [11, 16, 20, 3]
    np.testing.assert_array_equal(open_case_array(case), frames)


def test_an_annotator_may_not_upload(client_for, annotator, project, tmp_path):
    path = helpers.nifti(tmp_path / "a.nii", np.zeros((2, 4, 4), np.int16))
    response = helpers.upload(client_for(annotator), project, path)
    assert response.status_code == 403
    assert Case.objects.count() == 0


def test_an_outsider_gets_404_for_another_projects_upload(client_for, outsider, project, tmp_path):
    path = helpers.nifti(tmp_path / "a.nii", np.zeros((2, 4, 4), np.int16))
    response = helpers.upload(client_for(outsider), project, path)
    assert response.status_code == 404
    assert Case.objects.count() == 0


def test_the_upload_is_queued_as_the_ingest_task_on_the_default_queue(
    client_for, manager, project, tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.IMAGING_INGEST_EAGER = False
    sent = []
    from annotation_app.celery import app

    monkeypatch.setattr(app, "send_task", lambda name, args, queue: sent.append((name, args, queue)))
    path = helpers.nifti(tmp_path / "a.nii", np.zeros((2, 4, 4), np.int16))
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, path)
    case_id = response.json()[0]["id"]
    assert sent == [(tasks.INGEST.name, [case_id], "default")]
    assert Case.objects.get(pk=case_id).status == "ingesting"


def test_even_small_uploads_are_streamed_to_temporary_files(
    client_for, manager, project, tmp_path, monkeypatch
):
    from django.core.files.uploadedfile import TemporaryUploadedFile

    from annotation_app.imaging.api import views

    seen: list[type] = []

    def fake_stage(project, uploads, **kwargs):
        seen.extend(type(f) for _, f in uploads)
        return []

    monkeypatch.setattr(views, "stage_upload", fake_stage)
    path = helpers.nifti(tmp_path / "tiny.nii", np.zeros((1, 2, 2), np.int16))
    assert helpers.upload(client_for(manager), project, path).status_code == 202
    assert seen == [TemporaryUploadedFile]


def test_a_metaimage_header_and_its_raw_file_uploaded_together_make_one_case(
    client_for, manager, project, tmp_path, django_capture_on_commit_callbacks
):
    import SimpleITK as sitk

    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "scan.mhd"))
    assert (tmp_path / "scan.raw").exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = helpers.upload(client_for(manager), project, tmp_path / "scan.mhd", tmp_path / "scan.raw")
    (item,) = response.json()
    case = Case.objects.get(pk=item["id"])
    assert case.status == "ready", case.error
    np.testing.assert_array_equal(open_case_array(case), array)


def test_an_upload_to_a_missing_project_is_404_even_for_a_superuser(client_for, tmp_path):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser(username="root", password="root-pw-123")
    path = helpers.nifti(tmp_path / "a.nii", np.zeros((2, 4, 4), np.int16))
    with open(path, "rb") as handle:
        response = client_for(root).post(
            "/api/cases/upload/", {"project": 99999, "file": handle}, format="multipart"
        )
    assert response.status_code == 404
    assert Case.objects.count() == 0
