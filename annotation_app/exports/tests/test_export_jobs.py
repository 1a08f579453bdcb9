"""Export jobs: queued on `default`, progress on the row, a download link once done; managers only."""

import io
import zipfile

import numpy as np
import pytest

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.exports.models import ExportJob
from annotation_app.exports.services import run_export
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.imaging.storage import save_case_array
from annotation_app.lib import tasks


@pytest.fixture
def ready_case(project, annotator, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    case = Case.objects.create(project=project, name="c1", modality="CT", shape=[3, 6, 6], spacing=[2.0, 1.0, 1.0],
                               status=CaseStatus.READY)  # fmt: skip
    case.image_key = save_case_array(case, np.zeros(case.shape, dtype=np.int16))
    case.save(update_fields=["image_key"])
    target = Target.objects.create(case=case, label="lesion", created_by=annotator)
    mask = np.zeros(case.shape, dtype=bool)
    mask[1, 2:4, 2:5] = True
    MaskRevision.append(target, mask, "human", author=annotator)
    return case


@pytest.fixture
def no_broker(monkeypatch):
    """The web side's send, recorded instead of published (the worker test below uses a real one)."""
    sent = []
    record = lambda name, args, queue: sent.append((name, args, queue))  # noqa: E731
    monkeypatch.setattr("annotation_app.celery.app.send_task", record)
    return sent


@pytest.mark.django_db(transaction=True)
def test_a_manager_starts_a_case_export_and_downloads_it_when_done(project, manager, ready_case, client_for, no_broker):
    client = client_for(manager)
    response = client.post("/api/export-jobs/", {"project": project.pk, "case": ready_case.pk, "format": "nifti"})
    assert response.status_code == 202, response.content
    job = response.json()
    assert (job["status"], job["progress"], job["download_url"]) == ("queued", 0.0, None)
    assert no_broker == [(tasks.EXPORT.name, [job["id"]], "default")]
    assert client.get(f"/api/export-jobs/{job['id']}/download/").status_code == 409
    assert run_export(job["id"]) == "succeeded"
    done = client.get(f"/api/export-jobs/{job['id']}/").json()
    name = f"case_{ready_case.pk}_labels.nii.gz"
    assert (done["status"], done["progress"], done["filename"]) == ("succeeded", 1.0, name)
    body = b"".join(client.get(done["download_url"]).streaming_content)
    assert len(body) == done["size"] > 0
    assert body[:2] == b"\x1f\x8b"  # gzip
    assert run_export(job["id"]) == "skipped"  # a redelivered task leaves a finished job alone


@pytest.mark.django_db(transaction=True)
def test_a_project_export_reports_progress_per_case_and_zips_every_case(project, manager, ready_case, client_for,
                                                                        no_broker, monkeypatch):  # fmt: skip
    Case.objects.create(project=project, name="c2", modality="CT", shape=[3, 6, 6], spacing=[1.0, 1.0, 1.0],
                        status=CaseStatus.INGESTING)  # fmt: skip
    seen = []
    original = ExportJob.set_progress
    monkeypatch.setattr(ExportJob, "set_progress", lambda self, f: (seen.append(round(f, 2)), original(self, f)))
    job = client_for(manager).post("/api/export-jobs/", {"project": project.pk, "format": "project-zip"}).json()
    assert run_export(job["id"]) == "succeeded"
    assert seen == [0.0]  # one ready case: progress before it; 1.0 on success
    stored = ExportJob.objects.get(pk=job["id"])
    body = b"".join(client_for(manager).get(f"/api/export-jobs/{stored.pk}/download/").streaming_content)
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert names == [f"cases/{ready_case.pk:06d}/labels.nii.gz", "manifest.json"]


@pytest.mark.django_db(transaction=True)
def test_the_same_export_twice_while_queued_is_a_conflict(project, manager, ready_case, client_for, no_broker):
    body = {"project": project.pk, "case": ready_case.pk, "format": "coco"}
    assert client_for(manager).post("/api/export-jobs/", body).status_code == 202
    second = client_for(manager).post("/api/export-jobs/", body)
    assert second.status_code == 409
    assert ExportJob.objects.count() == 1
    assert len(no_broker) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"format": "nifti"}, "case"),
        ({"format": "project-zip", "case": "CASE"}, "case"),
        ({"format": "stl", "case": "CASE"}, "format"),
        ({"format": "coco", "case": "CASE", "statuses": ["finished"]}, "statuses"),
    ],
)
def test_bad_export_requests_are_refused_with_the_field(project, manager, ready_case, client_for, body, field):
    body = {k: (ready_case.pk if v == "CASE" else v) for k, v in body.items()}
    response = client_for(manager).post("/api/export-jobs/", {"project": project.pk, **body})
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert ExportJob.objects.count() == 0


@pytest.mark.django_db
def test_a_failed_export_keeps_the_reason_and_frees_the_slot(project, manager, ready_case, monkeypatch):
    from annotation_app.imaging import exports

    def broken(*args):
        raise exports.ExportError("no target has a mask in these statuses")

    monkeypatch.setattr(exports, "export_case", broken)
    job = ExportJob.objects.create(project=project, case=ready_case, format="nifti", created_by=manager)
    assert run_export(job.pk) == "failed"
    job.refresh_from_db()
    assert (job.status, job.error, job.result_key) == ("failed", "no target has a mask in these statuses", "")
    assert ExportJob(project=project, case=ready_case, format="nifti").duplicate_of() is None


def test_an_export_job_runs_on_a_real_worker_of_the_default_queue(project, manager, ready_case, start_celery_worker,
                                                                 client_for):  # fmt: skip
    import time

    start_celery_worker(queues=("default",))
    job = client_for(manager).post("/api/export-jobs/", {"project": project.pk, "case": ready_case.pk,
                                                         "format": "coco"}).json()  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = ExportJob.objects.get(pk=job["id"])
        if row.status in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert (row.status, row.error, row.progress) == ("succeeded", "", 1.0)
    assert row.filename == f"case_{ready_case.pk}_coco.zip" and row.size > 0
