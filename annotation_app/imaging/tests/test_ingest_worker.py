"""An upload converted by a real Celery worker process (default queue) through Redis."""

import time

import numpy as np
import pytest

from annotation_app.imaging.models import Case
from annotation_app.imaging.storage import open_case_array
from annotation_app.imaging.tests import helpers


@pytest.mark.slow
def test_an_uploaded_series_is_converted_by_a_worker_on_the_default_queue(
    start_celery_worker, client_for, manager, project, tmp_path, settings
):
    settings.IMAGING_INGEST_EAGER = False
    worker = start_celery_worker(queues=("default",))
    volume = helpers.ct_volume()
    helpers.dicom_series(tmp_path / "series", volume)
    archive = helpers.zip_folder(tmp_path / "series", tmp_path / "ct.zip")
    response = helpers.upload(client_for(manager), project, archive)
    assert response.status_code == 202, response.content
    case_id = response.json()[0]["id"]
    deadline = time.monotonic() + 90
    case = Case.objects.get(pk=case_id)
    while case.status == "ingesting" and time.monotonic() < deadline:
        time.sleep(0.5)
        case.refresh_from_db()
    assert case.status == "ready", (case.status, case.error, worker.log())
    assert case.progress == 1.0
    np.testing.assert_array_equal(open_case_array(case), volume)
