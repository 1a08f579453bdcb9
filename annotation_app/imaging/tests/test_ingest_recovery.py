"""Which ingests a worker's recovery loop takes back (imaging/ingest_recovery.py), in-process: the ingest
it sends again runs at once here (IMAGING_INGEST_EAGER). tests/test_faults_ingest.py does the same with
real worker processes killed with SIGKILL."""

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation_app.imaging.ingest import stage_upload
from annotation_app.imaging.ingest_recovery import claim, recover_ingests
from annotation_app.imaging.models import Case
from annotation_app.imaging.tests import helpers

pytestmark = pytest.mark.django_db
NODE = f"default-1@{socket.gethostname()}"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def staged(project, tmp_path) -> Case:
    """A case whose upload is stored and that a worker has not converted yet."""
    path = helpers.nifti(tmp_path / "ct.nii", helpers.ct_volume())
    return stage_upload(project, [(path.name, path)], run="none")[0]


def _claimed_by(case: Case, worker: str, beat_s_ago: float = 0.0, attempts: int = 1) -> Case:
    Case.objects.filter(pk=case.pk).update(
        ingest_worker=worker,
        ingest_heartbeat_at=timezone.now() - timedelta(seconds=beat_s_ago),
        ingest_attempts=attempts,
    )
    case.refresh_from_db()
    return case


def test_a_claim_of_a_dead_process_of_the_same_worker_is_taken_back_at_once(staged):
    case = _claimed_by(staged, f"{NODE}#{_dead_pid()}")
    assert recover_ingests(NODE) == [case.pk]
    case.refresh_from_db()
    assert case.status == "ready" and case.ingest_attempts == 2


def test_a_fresh_claim_of_a_live_process_or_of_another_machine_is_left_alone(staged):
    _claimed_by(staged, f"{NODE}#1")  # pid 1 is alive
    assert recover_ingests(NODE) == []
    _claimed_by(staged, f"default-1@elsewhere#{_dead_pid()}")  # its pid means nothing here
    assert recover_ingests(NODE) == []
    staged.refresh_from_db()
    assert staged.status == "ingesting" and staged.ingest_attempts == 1


def test_a_stale_claim_is_taken_back_by_any_worker_and_a_second_claim_loses(staged, settings):
    settings.INGEST_STALE_AFTER_S = 60
    case = _claimed_by(staged, "other@host#123", beat_s_ago=30)
    assert recover_ingests("someone@else") == []  # 30 s is not stale yet
    assert claim(case, "me@here#1") is False  # a redelivered message while the claim is alive
    case = _claimed_by(staged, "other@host#123", beat_s_ago=61)
    assert recover_ingests("someone@else") == [case.pk]
    case.refresh_from_db()
    assert case.status == "ready"


def test_a_case_that_used_up_its_attempts_fails_with_the_reason_and_its_files_go(staged, settings, tmp_path):
    settings.INGEST_MAX_ATTEMPTS = 3
    case = _claimed_by(staged, f"{NODE}#{os.getpid() + 10**6}", beat_s_ago=600, attempts=3)
    assert recover_ingests(NODE) == [case.pk]
    case.refresh_from_db()
    assert case.status == "failed" and case.error.startswith("the worker converting this image was lost 3 times")
    from annotation_app.imaging.tests.conftest import stored_files

    assert stored_files(tmp_path) == []
