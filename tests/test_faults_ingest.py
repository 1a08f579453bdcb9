"""Faults during ingest, with REAL Celery worker processes on Redis and the test Postgres database.

A worker killed with SIGKILL (main process and pool children, as when a machine dies) while it converts
a large DICOM series leaves the case `ingesting` with a claim that stops beating. Another worker's
recovery loop (inference_worker/recovery.py -> imaging/ingest_recovery.py) takes it back: the case ends
`ready`, converted once to completion, with one stored array and one stored original; after
INGEST_MAX_ATTEMPTS lost workers it ends `failed` with a reason and no file instead.

Timings here are short (beat every 0.5 s, stale after 3 s, recovery every 1 s); the product's defaults
are 10 s, 60 s and 30 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from annotation_app.imaging.io.dicom_write import write_series
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.imaging.storage import open_case_array
from annotation_app.imaging.tests.helpers import upload, zip_folder
from tests.test_propagation_worker import wait_for

pytestmark = pytest.mark.slow

INGEST_ENV = {
    "OMP_NUM_THREADS": "1",
    "INGEST_HEARTBEAT_S": "0.5",
    "INGEST_STALE_AFTER_S": "3",
    "PROPAGATION_RECOVERY_INTERVAL_S": "1",
    "INGEST_MAX_ATTEMPTS": "3",
}
SHAPE = (320, 128, 128)  # 320 DICOM files: the conversion takes seconds, long enough to be cut


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"
    settings.IMAGING_INGEST_EAGER = False
    return tmp_path


@pytest.fixture
def series_zip(tmp_path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 1000, size=SHAPE).astype(np.int16)
    folder = tmp_path / "series"
    write_series(volume, folder, spacing=(1.5, 0.8, 0.8))
    return zip_folder(folder, tmp_path / "series.zip"), volume


def _files(root: Path, under: str) -> list[str]:
    folder = root / under
    return sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _upload_case(client, project, path: Path) -> Case:
    response = upload(client, project, path)
    assert response.status_code == 202, response.content
    return Case.objects.get(pk=response.json()[0]["id"])


def _kill_mid_conversion(worker, case: Case) -> float:
    """SIGKILL `worker` once it has claimed `case` and converted part of it; returns the progress then."""

    def converting():
        case.refresh_from_db()
        return case.ingest_worker.startswith(f"{worker.name}#") and 0.1 <= case.progress < 0.75

    try:
        wait_for(converting, timeout=120, interval=0.02, what=f"{worker.name} to be converting case {case.pk}")
    except AssertionError:
        print(worker.log(8000))
        raise
    worker.kill9()
    case.refresh_from_db()
    return case.progress


def _settled(case: Case, timeout: float, workers) -> Case:
    def done():
        case.refresh_from_db()
        return case.status != CaseStatus.INGESTING

    try:
        wait_for(done, timeout=timeout, interval=0.2, what=f"case {case.pk} to leave ingesting")
    except AssertionError:
        for worker in workers:
            print(worker.log(8000))
        raise
    return case


def test_a_case_whose_worker_is_killed_mid_conversion_is_converted_once_by_the_next_worker(
    start_celery_worker, media, project, manager, client_for, series_zip
):
    path, volume = series_zip
    first = start_celery_worker(queues=("default",), env=INGEST_ENV, name="ingest-a")
    case = _upload_case(client_for(manager), project, path)
    progress_at_kill = _kill_mid_conversion(first, case)
    killed_at = time.monotonic()

    time.sleep(1.0)  # nobody is left to convert it
    case.refresh_from_db()
    assert case.status == CaseStatus.INGESTING and case.ingest_attempts == 1
    assert _files(media, "media/cases") == []  # killed before its array was stored

    second = start_celery_worker(queues=("default",), env=INGEST_ENV, name="ingest-b")
    case = _settled(case, timeout=180, workers=[first, second])
    recovered_s = time.monotonic() - killed_at

    assert case.status == CaseStatus.READY, case.error
    assert case.ingest_attempts == 2 and case.ingest_worker.startswith(f"{second.name}#")
    assert case.shape == list(SHAPE)
    np.testing.assert_array_equal(np.asarray(open_case_array(case)), volume)
    # Converted once to completion: one array, one original, no work folder of the killed run.
    assert _files(media, "media/cases") == [f"media/cases/{project.pk}/{case.pk}/image.npy"]
    assert len(_files(media, "media/uploads")) == 1
    assert _files(media, "var/tmp") == []
    assert "queued again" in second.log(20000)
    response = client_for(manager).get(f"/api/cases/{case.pk}/slice/?axis=axial&index=300&format=raw")
    assert response.status_code == 200, response.content
    print(f"\nkilled at progress {progress_at_kill:.2f}; ready {recovered_s:.1f} s after the kill (incl. worker start)")


def test_a_case_that_loses_every_worker_fails_with_a_reason_and_keeps_no_file(
    start_celery_worker, media, project, manager, client_for, series_zip
):
    path, _ = series_zip
    env = {**INGEST_ENV, "INGEST_MAX_ATTEMPTS": "2"}
    lost = []
    case = None
    for n in range(2):
        # Two pool processes: the readiness ping is answered while the other one converts (a worker
        # started after the first loss takes the case back at once, during its own start).
        worker = start_celery_worker(queues=("default",), env=env, name=f"lost-{n}", concurrency=2)
        if case is None:
            case = _upload_case(client_for(manager), project, path)
        _kill_mid_conversion(worker, case)
        lost.append(worker)
        case.refresh_from_db()
        assert case.status == CaseStatus.INGESTING and case.ingest_attempts == n + 1

    last = start_celery_worker(queues=("default",), env=env, name="survivor")
    case = _settled(case, timeout=120, workers=[*lost, last])

    assert case.status == CaseStatus.FAILED
    assert case.error.startswith("the worker converting this image was lost 2 times"), case.error
    assert "/" not in case.error
    assert case.ingest_attempts == 2
    assert _files(media, "media") == []  # neither the original nor a part of the array
    assert _files(media, "var/tmp") == []
    body = client_for(manager).get(f"/api/cases/{case.pk}/").json()
    assert body["status"] == "failed" and "lost 2 times" in body["error"]
    assert last.is_alive()
