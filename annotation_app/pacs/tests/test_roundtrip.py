"""The PACS round trip against a real Orthanc and a real Celery worker: search, import through the
API into a case, annotate and accept, send the mask back as DICOM SEG and read it from Orthanc."""

import base64
import time
import zlib

import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from django.contrib.auth import get_user_model

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.imaging.models import Case
from annotation_app.imaging.storage import open_case_array
from annotation_app.pacs.models import PacsImport, SegSend
from annotation_app.pacs.tests.conftest import ct_volume, synthetic_study
from annotation_app.pacs.tests.orthanc import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(read, done, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if done(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out; last state {value}")


def pacs_reader(orthanc) -> DICOMwebClient:
    session = create_session_from_user_pass(orthanc.username, orthanc.password)
    return DICOMwebClient(url=orthanc.dicomweb_url, session=session)


def make_connection(client, orthanc, project=None, **overrides) -> dict:
    body = {
        "name": "Orthanc",
        "qido_url": orthanc.dicomweb_url,
        "wado_url": orthanc.dicomweb_url,
        "stow_url": orthanc.dicomweb_url,
        "username": orthanc.username,
        "password": orthanc.password,
        **overrides,
    }
    if project is not None:
        body["project"] = project.pk
    response = client.post("/api/pacs/connections/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def lesion_mask(shape) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[2:4, 8:16, 10:20] = True
    mask[3, 9:12, 21:24] = True
    return mask


def post_mask(client, target_id: int, mask: np.ndarray) -> None:
    packed = base64.b64encode(zlib.compress(np.packbits(mask).tobytes())).decode()
    response = client.post("/api/mask-revisions/", {"target": target_id, "mask_b64": packed}, format="json")
    assert response.status_code == 201, response.content


def import_and_wait(client, project, connection_id, study_uid, series_uid) -> dict:
    body = {"project": project.pk, "connection": connection_id, "study_uid": study_uid, "series_uid": series_uid}
    response = client.post("/api/pacs/imports/", body, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    return wait_for(
        lambda: client.get(f"/api/pacs/imports/{job_id}/").json(),
        lambda job: job["status"] in ("succeeded", "failed"),
    )


def annotate_and_accept(client_for, annotator, reviewer, case_id: int, mask: np.ndarray) -> int:
    author = client_for(annotator)
    response = author.post("/api/targets/", {"case": case_id, "label": "lesion"}, format="json")
    assert response.status_code == 201, response.content
    target_id = response.json()["id"]
    post_mask(author, target_id, mask)
    assert author.post(f"/api/targets/{target_id}/submit/", {}, format="json").status_code == 200
    accepted = client_for(reviewer).post(f"/api/targets/{target_id}/accept/", {"comment": "ok"}, format="json")
    assert accepted.status_code == 200, accepted.content
    return target_id


def read_seg(orthanc, study_uid: str, send: dict) -> hd.seg.Segmentation:
    dataset = pacs_reader(orthanc).retrieve_instance(study_uid, send["series_instance_uid"], send["sop_instance_uid"])
    return hd.seg.Segmentation.from_dataset(dataset)


def seg_in_source_order(seg: hd.seg.Segmentation, instance_uids: list[str]) -> np.ndarray:
    """The SEG's segment 1 as a (slices, rows, columns) array in the source series' slice order."""
    volume = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=instance_uids, segment_numbers=[1], ignore_spatial_locations=True
    )
    return volume[..., 0].astype(bool)


def test_a_series_found_in_orthanc_is_imported_annotated_and_its_seg_read_back(
    orthanc, start_celery_worker, project, manager, reviewer, annotator, client_for, tmp_path
):
    volume = ct_volume()
    paths = synthetic_study(
        tmp_path / "ct", volume, patient_id="PACS-0042", patient_name="Doe^Jane",
        accession="ACC123", study_description="Liver CT", series_description="portal venous",
    )  # fmt: skip
    other = synthetic_study(
        tmp_path / "mr", ct_volume(shape=(3, 8, 8), seed=1), modality="MR", patient_id="PACS-0099",
        patient_name="Roe^Richard", accession="ACC999", study_description="Brain MR",
    )  # fmt: skip
    orthanc.store_files(paths + other)
    study_uid = str(pydicom.dcmread(paths[0]).StudyInstanceUID)
    series_uid = str(pydicom.dcmread(paths[0]).SeriesInstanceUID)
    start_celery_worker(queues=("default",))

    admin = get_user_model().objects.create_superuser(username="site-admin", password="site-admin-pw")
    connection = make_connection(client_for(admin), orthanc, project)
    assert connection["has_credentials"] is True
    assert "password" not in connection and "username" not in connection

    boss = client_for(manager)
    studies = f"/api/pacs/connections/{connection['id']}/studies/"
    searches = {
        "patient_id=PACS-0042": ["PACS-0042"],
        "patient_name=Doe*": ["PACS-0042"],
        "modality=MR": ["PACS-0099"],
        "accession_number=ACC123": ["PACS-0042"],
        "description=Brain*": ["PACS-0099"],
        "study_date=20260101": ["PACS-0042", "PACS-0099"],
        "study_date=20250101-20251231": [],
    }
    for query, expected in searches.items():
        response = boss.get(f"{studies}?project={project.pk}&{query}")
        assert response.status_code == 200, (query, response.content)
        assert sorted(s["PatientID"] for s in response.json()["results"]) == expected, query
    found = boss.get(f"{studies}?project={project.pk}&patient_id=PACS-0042").json()["results"][0]
    assert found["StudyInstanceUID"] == study_uid and found["StudyDescription"] == "Liver CT"

    series = boss.get(f"/api/pacs/connections/{connection['id']}/series/?project={project.pk}&study_uid={study_uid}")
    assert series.status_code == 200, series.content
    [item] = series.json()["results"]
    assert (item["SeriesInstanceUID"], item["NumberOfSeriesRelatedInstances"], item["import"]) == (series_uid, 6, None)

    job = import_and_wait(boss, project, connection["id"], study_uid, series_uid)
    assert job["status"] == "succeeded", job
    assert (job["progress"], job["n_instances"], job["case_status"]) == (1.0, 6, "ready")
    case = Case.objects.get(pk=job["case"])
    assert (case.shape, case.spacing, case.series_uid, case.study_uid) == (
        [6, 24, 32],
        [2.0, 0.8, 0.7],
        series_uid,
        study_uid,
    )
    assert case.origin == [0.0, 0.0, 0.0] and case.image_meta["pacs"]["import"] == job["id"]
    assert np.array_equal(open_case_array(case), volume)

    again = boss.post(
        "/api/pacs/imports/",
        {"project": project.pk, "connection": connection["id"], "study_uid": study_uid, "series_uid": series_uid},
        format="json",
    )
    assert again.status_code == 409 and "already imported" in again.json()["detail"]
    assert Case.objects.filter(project=project).count() == 1 and PacsImport.objects.count() == 1
    listed = boss.get(f"/api/pacs/connections/{connection['id']}/series/?project={project.pk}&study_uid={study_uid}")
    assert listed.json()["results"][0]["import"] == job["id"]

    mask = lesion_mask(case.shape)
    target_id = annotate_and_accept(client_for, annotator, reviewer, case.pk, mask)
    sender = client_for(reviewer)
    response = sender.post("/api/pacs/sends/", {"target": target_id, "connection": connection["id"]}, format="json")
    assert response.status_code == 201, response.content
    send = wait_for(
        lambda: sender.get(f"/api/pacs/sends/{response.json()['id']}/").json(),
        lambda s: s["status"] in ("sent", "failed"),
    )
    assert (send["status"], send["error"], send["attempts"], send["revision_number"]) == ("sent", "", 1, 1)
    assert send["study_instance_uid"] == study_uid

    instance_uids = [str(pydicom.dcmread(p).SOPInstanceUID) for p in paths]
    seg = read_seg(orthanc, study_uid, send)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.StudyInstanceUID == study_uid
    assert {s for _, s, _ in seg.get_source_image_uids()} == {series_uid}
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert (int(seg.Rows), int(seg.Columns)) == (24, 32)
    assert int(seg.NumberOfFrames) == 2  # empty slices are left out: the lesion covers slices 2 and 3
    read_back = np.zeros_like(mask)
    read_back[2:4] = seg_in_source_order(seg, instance_uids[2:4])
    assert np.array_equal(read_back, mask), int((read_back != mask).sum())
    assert int(read_back.sum()) == 2 * 8 * 10 + 3 * 3

    # A later accepted revision goes as a new SEG instance; the first stays in the PACS unchanged.
    # (The API locks an accepted target; the revision is appended the way a re-review would append it.)
    target = Target.objects.get(pk=target_id)
    grown = mask.copy()
    grown[1, 8:16, 10:20] = True
    MaskRevision.append(target, grown, "human", author=reviewer, note="re-review")
    second = sender.post("/api/pacs/sends/", {"target": target_id, "connection": connection["id"]}, format="json")
    assert second.status_code == 201, second.content
    send2 = wait_for(
        lambda: sender.get(f"/api/pacs/sends/{second.json()['id']}/").json(),
        lambda s: s["status"] in ("sent", "failed"),
    )
    assert (send2["status"], send2["revision_number"]) == ("sent", 2)
    assert send2["sop_instance_uid"] != send["sop_instance_uid"]
    segs = pacs_reader(orthanc).search_for_series(study_uid, search_filters={"Modality": "SEG"})
    assert len(segs) == 2
    assert int(read_seg(orthanc, study_uid, send).NumberOfFrames) == 2
    assert int(read_seg(orthanc, study_uid, send2).NumberOfFrames) == 3
    repeat = sender.post("/api/pacs/sends/", {"target": target_id, "connection": connection["id"]}, format="json")
    assert repeat.status_code == 409 and "already in the PACS" in repeat.json()["detail"]
    assert SegSend.objects.filter(target_id=target_id).count() == 2


def test_an_accepted_target_is_sent_automatically_and_a_failed_send_is_retried(
    orthanc, start_celery_worker, project, manager, reviewer, annotator, client_for, tmp_path
):
    volume = ct_volume(shape=(4, 16, 16))
    paths = synthetic_study(tmp_path / "ct", volume, patient_id="AUTO-1")
    orthanc.store_files(paths)
    ds = pydicom.dcmread(paths[0])
    start_celery_worker(queues=("default",))
    admin = client_for(get_user_model().objects.create_superuser(username="site-admin", password="site-admin-pw"))
    # STOW goes to a closed port at first: the send fails with the reason, then a retry succeeds.
    closed = f"http://127.0.0.1:{free_port()}/dicom-web"
    connection = make_connection(admin, orthanc, project, stow_url=closed)
    settings = {**project.settings, "pacs_auto_send_connection": connection["id"]}
    patched = client_for(manager).patch(f"/api/projects/{project.pk}/", {"settings": settings}, format="json")
    assert patched.status_code == 200 and patched.json()["settings"]["pacs_auto_send_connection"] == connection["id"]

    job = import_and_wait(admin, project, connection["id"], str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
    assert job["status"] == "succeeded", job
    mask = np.zeros((4, 16, 16), dtype=bool)
    mask[1:3, 4:9, 5:11] = True
    target_id = annotate_and_accept(client_for, annotator, reviewer, job["case"], mask)

    reader = client_for(annotator)
    failed = wait_for(
        lambda: reader.get(f"/api/pacs/sends/?target={target_id}").json()["results"],
        lambda rows: len(rows) == 1 and rows[0]["status"] in ("sent", "failed"),
    )[0]
    assert (failed["status"], failed["automatic"], failed["attempts"]) == ("failed", True, 1)
    assert "could not be reached" in failed["error"] and orthanc.password not in failed["error"]

    patched = admin.patch(
        f"/api/pacs/connections/{connection['id']}/", {"stow_url": orthanc.dicomweb_url}, format="json"
    )
    assert patched.status_code == 200, patched.content
    retried = client_for(reviewer).post(f"/api/pacs/sends/{failed['id']}/retry/", {}, format="json")
    assert retried.status_code == 202, retried.content
    sent = wait_for(
        lambda: reader.get(f"/api/pacs/sends/{failed['id']}/").json(), lambda s: s["status"] in ("sent", "failed")
    )
    assert (sent["status"], sent["attempts"], sent["error"]) == ("sent", 2, "")
    assert sent["sop_instance_uid"] == failed["sop_instance_uid"]  # the same instance, re-sent
    seg = read_seg(orthanc, str(ds.StudyInstanceUID), sent)
    uids = [str(pydicom.dcmread(p).SOPInstanceUID) for p in paths]
    assert np.array_equal(seg_in_source_order(seg, uids[1:3]), mask[1:3])
