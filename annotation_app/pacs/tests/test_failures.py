"""A PACS that is down, fails or refuses the credentials gives a clear reason and leaves nothing half
imported; credentials never appear in responses or logs. The import and send steps run in this process
(the worker tasks call the same functions; test_roundtrip.py runs them in a real worker)."""

import logging
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.contrib.auth import get_user_model

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.imaging.models import Case
from annotation_app.pacs.models import DicomWebConnection, PacsImport
from annotation_app.pacs.services import run_import
from annotation_app.pacs.tests.conftest import ct_volume, synthetic_study
from annotation_app.pacs.tests.orthanc import free_port


class _Fails(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = b"database on fire"
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def failing_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fails)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site_admin(db):
    return get_user_model().objects.create_superuser(username="site-admin", password="site-admin-pw")


@pytest.fixture
def stored_series(orthanc, tmp_path):
    paths = synthetic_study(tmp_path / "ct", ct_volume(shape=(3, 8, 8)), patient_id="FAIL-1")
    orthanc.store_files(paths)
    ds = pydicom.dcmread(paths[0])
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)


def connection_to(orthanc, project, **urls) -> DicomWebConnection:
    base = orthanc.dicomweb_url
    return DicomWebConnection.objects.create(
        name="PACS",
        project=project,
        qido_url=urls.get("qido", base),
        wado_url=urls.get("wado", base),
        stow_url=urls.get("stow", base),
        username=orthanc.username,
        password=orthanc.password,
    )


def queue_import(client, project, connection, study_uid, series_uid) -> PacsImport:
    body = {"project": project.pk, "connection": connection.pk, "study_uid": study_uid, "series_uid": series_uid}
    response = client.post("/api/pacs/imports/", body, format="json")
    assert response.status_code == 201, response.content
    return PacsImport.objects.get(pk=response.json()["id"])


def stored_files(tmp_path) -> list[str]:
    out = []
    for folder in (tmp_path / "media", tmp_path / "var" / "tmp"):
        if folder.exists():
            out += [str(p) for p in folder.rglob("*") if p.is_file()]
    return out


@pytest.mark.django_db
def test_a_pacs_that_refuses_connections_fails_the_import_with_the_reason_and_stores_nothing(
    orthanc, stored_series, project, manager, client_for, tmp_path
):
    closed = f"http://127.0.0.1:{free_port()}/dicom-web"
    connection = connection_to(orthanc, project, qido=closed, wado=closed)
    job = queue_import(client_for(manager), project, connection, *stored_series)
    assert run_import(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "could not be reached" in job.error and "'PACS'" in job.error
    assert Case.objects.count() == 0 and stored_files(tmp_path) == []
    # a failed import does not block a new try of the same series
    assert queue_import(client_for(manager), project, connection, *stored_series).status == "queued"


@pytest.mark.django_db
def test_a_pacs_answering_500_mid_import_leaves_no_case_and_says_so(
    orthanc, stored_series, failing_server, project, manager, client_for, tmp_path
):
    # QIDO (the instance count) works, WADO-RS then answers 500: nothing of the series is kept.
    connection = connection_to(orthanc, project, wado=failing_server)
    job = queue_import(client_for(manager), project, connection, *stored_series)
    assert run_import(job.pk) == "failed"
    job.refresh_from_db()
    assert "answered HTTP 500 while retrieving the series: database on fire" in job.error, job.error
    assert job.n_instances == 3 and job.case_id is None
    assert Case.objects.count() == 0 and stored_files(tmp_path) == []


@pytest.mark.django_db
def test_a_search_against_a_failing_or_refusing_pacs_answers_502_with_the_reason(
    orthanc, failing_server, project, manager, client_for
):
    boss = client_for(manager)
    broken = connection_to(orthanc, project, qido=failing_server)
    response = boss.get(f"/api/pacs/connections/{broken.pk}/studies/?project={project.pk}")
    assert response.status_code == 502 and "answered HTTP 500" in response.json()["detail"]
    wrong = connection_to(orthanc, project)
    DicomWebConnection.objects.filter(pk=wrong.pk).update(password="not-the-password")
    response = boss.get(f"/api/pacs/connections/{wrong.pk}/studies/?project={project.pk}")
    assert response.status_code == 502 and "refused the credentials" in response.json()["detail"]
    assert "not-the-password" not in response.content.decode()


@pytest.mark.django_db
def test_credentials_never_appear_in_responses_or_logs(
    orthanc, stored_series, site_admin, project, manager, annotator, client_for, caplog, tmp_path
):
    caplog.set_level(logging.DEBUG)
    admin = client_for(site_admin)
    body = {
        "name": "Orthanc", "project": project.pk, "qido_url": orthanc.dicomweb_url,
        "wado_url": orthanc.dicomweb_url, "stow_url": orthanc.dicomweb_url,
        "username": orthanc.username, "password": orthanc.password,
    }  # fmt: skip
    created = admin.post("/api/pacs/connections/", body, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    responses = [
        created,
        admin.get("/api/pacs/connections/"),
        client_for(annotator).get(f"/api/pacs/connections/{pk}/"),
    ]
    boss = client_for(manager)
    responses.append(boss.get(f"/api/pacs/connections/{pk}/studies/?project={project.pk}&patient_id=FAIL-1"))
    assert len(responses[-1].json()["results"]) == 1
    connection = DicomWebConnection.objects.get(pk=pk)
    job = queue_import(boss, project, connection, *stored_series)
    assert run_import(job.pk) == "succeeded"
    responses.append(boss.get(f"/api/pacs/imports/{job.pk}/"))
    for response in responses:
        text = response.content.decode()
        assert orthanc.password not in text and orthanc.username not in text, text[:300]
    assert "password" not in responses[1].json()["results"][0]
    assert any("dicomweb_client" in r.name for r in caplog.records)  # the client's debug log was captured
    assert orthanc.password not in caplog.text and orthanc.username not in caplog.text
    assert orthanc.password not in repr(connection) + str(connection)


@pytest.mark.django_db
def test_a_connection_url_with_a_user_or_another_scheme_is_refused(site_admin, client_for):
    admin = client_for(site_admin)
    for bad in ("http://user:secret@pacs.example/dicom-web", "ftp://pacs.example/dicom-web", "pacs.example"):
        body = {"name": "x", "qido_url": bad, "wado_url": "http://pacs.example/dicom-web"}
        response = admin.post("/api/pacs/connections/", body, format="json")
        assert response.status_code == 400, (bad, response.content)
        assert "qido_url" in response.json()["errors"] and "secret" not in response.content.decode()
    assert DicomWebConnection.objects.count() == 0


@pytest.mark.django_db
def test_a_connection_of_another_project_cannot_be_used_to_import_or_send(
    project, other_project, manager, reviewer, annotator, client_for
):
    theirs = DicomWebConnection.objects.create(
        name="theirs", project=other_project, qido_url="http://127.0.0.1:9/q", wado_url="http://127.0.0.1:9/w"
    )
    body = {"project": project.pk, "connection": theirs.pk, "study_uid": "1.2.3", "series_uid": "1.2.3.4"}
    response = client_for(manager).post("/api/pacs/imports/", body, format="json")
    assert response.status_code == 400 and "connection" in response.json()["errors"]
    assert client_for(manager).get(f"/api/pacs/connections/{theirs.pk}/").status_code == 404
    assert PacsImport.objects.count() == 0


@pytest.mark.django_db
def test_only_accepted_targets_are_sent(project, reviewer, annotator, client_for):
    from annotation_app.imaging.tests.conftest import make_ready_case

    case = make_ready_case(project, np.zeros((3, 8, 8), dtype=np.int16))
    target = Target.objects.create(case=case, label="lesion", created_by=annotator)
    mask = np.zeros((3, 8, 8), dtype=bool)
    mask[1, 2:4, 2:4] = True
    MaskRevision.append(target, mask, "human", author=annotator)
    connection = DicomWebConnection.objects.create(
        name="site-wide",
        qido_url="http://127.0.0.1:9/q",
        wado_url="http://127.0.0.1:9/w",
        stow_url="http://127.0.0.1:9/s",
    )
    response = client_for(reviewer).post(
        "/api/pacs/sends/", {"target": target.pk, "connection": connection.pk}, format="json"
    )
    assert response.status_code == 409 and "only accepted targets" in response.json()["detail"]


@pytest.mark.django_db
def test_an_abandoned_import_is_taken_over_and_a_live_one_is_left_alone(
    orthanc, stored_series, project, manager, client_for
):
    from datetime import timedelta

    from django.utils import timezone

    connection = connection_to(orthanc, project)
    job = queue_import(client_for(manager), project, connection, *stored_series)
    PacsImport.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now())
    assert run_import(job.pk) == "skipped"  # another worker is on it
    assert Case.objects.count() == 0
    # that worker died after staging the series (a case, still ingesting) and went quiet
    assert run_import_until_staged(job) == 1
    PacsImport.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now() - timedelta(hours=1))
    assert run_import(job.pk) == "succeeded"
    job.refresh_from_db()
    assert Case.objects.count() == 1 and job.case.status == "ready" and job.case.shape == [3, 8, 8]


def run_import_until_staged(job: PacsImport) -> int:
    """Do the fetch and stage steps of an import (as a worker that then died would have)."""
    from annotation_app.pacs.services import SeriesImport

    job.refresh_from_db()
    steps = SeriesImport(job)
    with tempfile.TemporaryDirectory() as folder:
        return len(steps.stage(steps.fetch(Path(folder))))
