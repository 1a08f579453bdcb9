"""The propagation task run in-process with a real random-weight `test_tiny` model: frame ranges and
directions, key-frame jobs, bad prompts, transient errors. (Real worker processes: tests/.)"""

import numpy as np
import pytest
from django.db import OperationalError

from annotation_app.annotations.models import MaskRevision, Prompt, PromptKind
from annotation_app.propagation.models import JobKind, JobStatus, PropagationJob
from annotation_app.propagation.tests.factories import make_case, make_target, tiny_model_version
from inference_worker.model_cache import CACHE
from inference_worker.tasks import propagation


@pytest.fixture
def target(project, annotator, settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setenv("MEDSAM2_DEVICE", "cpu")
    CACHE.clear()
    tiny_model_version(project, tmp_path)
    return make_target(make_case(project), annotator)  # 12 frames of 64x64, box on frame 6


def job_for(target, **fields) -> PropagationJob:
    return PropagationJob.objects.create(target=target, idempotency_key=f"key-{fields}", **fields)


def test_a_forward_job_in_a_range_replaces_only_those_frames_of_the_current_mask(target, annotator):
    ones = np.ones((12, 64, 64), dtype=bool)
    MaskRevision.append(target, ones, source="human", author=annotator)
    job = job_for(target, direction="forward", frame_range=[2, 8])
    result = propagation.run_job(job.pk, "test-worker")
    job.refresh_from_db()
    assert result["status"] == JobStatus.SUCCEEDED and result["frames"] == 3, job.error
    assert (job.frames_done, job.frames_total) == (3, 3)
    revision = MaskRevision.objects.get(pk=job.result_revision_id)
    assert revision.number == 2 and revision.parent.number == 1
    assert sorted(revision.frame_scores, key=int) == ["6", "7", "8"]
    mask = revision.mask()
    untouched = [f for f in range(12) if f not in (6, 7, 8)]
    assert mask[untouched].all()


def test_a_backward_job_runs_from_the_key_frame_to_the_first_frame(target):
    job = job_for(target, direction="backward")
    propagation.run_job(job.pk, "test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert sorted(job.result_revision.frame_scores, key=int) == [str(f) for f in range(7)]


def test_a_key_frame_job_computes_only_the_prompted_frames(target):
    Prompt.objects.create(target=target, frame=9, kind=PromptKind.POINT, payload={"points": [[30, 30]], "labels": [1]})
    job = job_for(target, kind=JobKind.KEY_FRAME)
    propagation.run_job(job.pk, "test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.frames_done, job.frames_total) == (2, 2)
    assert sorted(job.result_revision.frame_scores, key=int) == ["6", "9"]
    assert "propagate_s" not in job.timings


def test_an_invalid_prompt_fails_the_job_naming_the_prompt(target):
    bad = Prompt.objects.create(
        target=target, frame=6, kind=PromptKind.POINT, payload={"points": [[1, 2], [3, 4]], "labels": [1]}
    )
    job = job_for(target)
    propagation.run_job(job.pk, "test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == f"prompt {bad.pk} (point on frame 6) is invalid: points and labels differ in length"
    assert not MaskRevision.objects.exists()


def test_a_key_frame_outside_the_range_fails_with_a_clear_error(target):
    job = job_for(target, frame_range=[0, 3])
    propagation.run_job(job.pk, "test-worker")
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "key frame 6 lies outside the frame range [0, 3]")


def test_a_finished_or_unknown_job_is_skipped_without_work(target):
    done = job_for(target, status=JobStatus.SUCCEEDED)
    assert propagation.run_job(done.pk, "w")["skipped"] == "already succeeded"
    assert propagation.run_job(10**9, "w")["skipped"] == "no such job"


def test_a_transient_database_error_gives_the_job_back_and_the_retry_finishes_it(target, monkeypatch):
    real_execute = propagation._execute
    seen = []

    def flaky(job, worker, device, t0):
        seen.append(PropagationJob.objects.get(pk=job.pk).attempts)
        if len(seen) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_execute(job, worker, device, t0)

    monkeypatch.setattr(propagation, "_execute", flaky)
    job = job_for(target)
    outcome = propagation.propagate_target.apply(args=[job.pk])
    job.refresh_from_db()
    assert outcome.get()["status"] == JobStatus.SUCCEEDED
    assert seen == [1, 2] and job.attempts == 2 and job.status == JobStatus.SUCCEEDED
    assert MaskRevision.objects.filter(target=target).count() == 1


@pytest.mark.parametrize(
    "stored, expected",
    [
        ({"level": 40.0, "width": 400.0, "preset": "abdomen"}, (400.0, 40.0)),
        ({"preset": "lung"}, "lung"),
        ([1500, -600], (1500.0, -600.0)),
        (None, None),
    ],
)
def test_the_case_window_stored_by_ingest_becomes_the_predictors_width_and_level(target, stored, expected):
    case = target.case
    case.image_meta = {"window": stored} if stored is not None else {}
    assert propagation.model_window(case) == expected


def test_a_ct_case_with_an_ingested_window_propagates(target):
    case = target.case
    case.image_meta = {"window": {"level": 40.0, "width": 400.0, "preset": "abdomen"}}
    case.save(update_fields=["image_meta"])
    job = job_for(target, kind=JobKind.KEY_FRAME)
    propagation.run_job(job.pk, "test-worker")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
