"""The ingest task: conversion failures mark the case failed with a reason and store no image; runs
are idempotent; the Celery task is registered under its routed name."""

import pydicom
import pytest

from annotation_app.imaging.ingest import run_ingest, stage_upload
from annotation_app.imaging.models import Case
from annotation_app.imaging.tests import helpers
from annotation_app.lib import tasks

pytestmark = pytest.mark.django_db


def test_pixel_data_that_cannot_be_decoded_fails_the_case_with_a_reason(project, tmp_path):
    from pydicom.encaps import encapsulate

    paths = helpers.dicom_series(tmp_path / "s")
    ds = pydicom.dcmread(paths[3])
    ds.compress(pydicom.uid.RLELossless)
    # One whole fragment for the one frame, so the request accepts it; its bytes are no RLE stream.
    ds.PixelData = encapsulate([b"\xff" * 64])
    ds.save_as(paths[3], enforce_file_format=True)
    (case,) = stage_upload(project, [(p.name, p) for p in paths], run="none")
    assert case.status == "ingesting"
    assert run_ingest(case.pk) == "failed"
    case.refresh_from_db()
    assert case.status == "failed" and "slice_0003.dcm" in case.error and "decoded" in case.error
    assert case.image_key == "" and not (tmp_path / "media" / "cases").exists()


def test_a_second_run_of_the_same_case_does_nothing(project, tmp_path):
    path = helpers.nifti(tmp_path / "a.nii", helpers.ct_volume(shape=(2, 4, 4)))
    (case,) = stage_upload(project, [(path.name, path)], run="none")
    assert run_ingest(case.pk) == "ready"
    first = Case.objects.get(pk=case.pk)
    assert run_ingest(case.pk) == "skipped"
    assert Case.objects.get(pk=case.pk).updated_at == first.updated_at
    assert run_ingest(987654) == "skipped"


def test_the_celery_task_runs_the_ingest_on_the_default_queue(project, tmp_path):
    from annotation_app.celery import app
    from inference_worker.tasks.ingest import ingest_upload

    path = helpers.nifti(tmp_path / "a.nii", helpers.ct_volume(shape=(2, 4, 4)))
    (case,) = stage_upload(project, [(path.name, path)], run="none")
    assert ingest_upload.name == tasks.INGEST.name
    assert app.amqp.router.route({}, ingest_upload.name)["queue"].name == "default"
    assert ingest_upload.run(case.pk) == "ready"
    assert Case.objects.get(pk=case.pk).progress == 1.0


def test_with_remote_storage_the_worker_reads_a_private_copy_of_the_original(project, tmp_path, monkeypatch):
    from django.core.files.storage import default_storage

    from annotation_app.imaging import ingest

    class RemoteLike:
        """The real storage, but without local paths, as S3 is."""

        def __getattr__(self, name):
            return getattr(default_storage, name)

        def path(self, name):
            raise NotImplementedError("remote storage")

    path = helpers.nifti(tmp_path / "a.nii", helpers.ct_volume(shape=(2, 4, 4)))
    (case,) = stage_upload(project, [(path.name, path)], run="none")
    monkeypatch.setattr(ingest, "default_storage", RemoteLike())
    assert run_ingest(case.pk) == "ready"
    assert not (tmp_path / "var" / "cache").exists()
    assert list((tmp_path / "var" / "tmp").iterdir()) == []
