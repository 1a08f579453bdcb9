"""Builders for timing tests: events with chosen client and receive times, jobs with chosen spans,
and lesions annotated in a known number of seconds."""

import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import numpy as np
import pytest

from annotation_app.annotations.models import InteractionEvent, MaskRevision, Target
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.propagation.models import JobStatus, PropagationJob

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def add_event(target: Target | None, user, kind: str, t: float, received: float | None = None, case=None, **payload):
    """An event the client stamped T0 + t and the server received at T0 + received (default t)."""
    case = case or target.case
    with mock.patch("django.utils.timezone.now", return_value=at(t if received is None else received)):
        return InteractionEvent.objects.create(
            project_id=case.project_id,
            case=case,
            target=target,
            user=user,
            kind=kind,
            client_event_id=uuid.uuid4(),
            client_ts=at(t),
            payload=payload,
        )


def add_job(target: Target, user, start: float, end: float, revision=None) -> PropagationJob:
    job = PropagationJob.objects.create(target=target, idempotency_key=f"test-{uuid.uuid4().hex}", requested_by=user)
    PropagationJob.objects.filter(pk=job.pk).update(
        created_at=at(start), started_at=at(start), finished_at=at(end), status=JobStatus.SUCCEEDED,
        result_revision=revision, model_name="test-model",
    )  # fmt: skip
    return job


def mask(case: Case, boxes: dict[int, tuple[int, int, int, int]]) -> np.ndarray:
    """{frame: (y0, y1, x0, x1)} -> a bool mask of the case's shape."""
    out = np.zeros(case.shape, dtype=bool)
    for frame, (y0, y1, x0, x1) in boxes.items():
        out[frame, y0:y1, x0:x1] = True
    return out


#: the model's proposal and two finals: 8 voxels on frames 1-2; the edit adds 4 on frame 2
PROPOSAL = {1: (2, 4, 2, 4), 2: (2, 4, 2, 4)}
EDITED = {1: (2, 4, 2, 4), 2: (2, 4, 2, 6)}  # Dice 2*8/(8+12) = 0.8, frame 2 corrected: edit fraction 1/2


def annotate_manually(target: Target, user, base: float, seconds: int) -> None:
    """Drawn by hand: a stroke every 20 s (never idle), submitted after `seconds`."""
    add_event(target, user, "target_opened", base)
    for t in range(20, seconds, 20):
        add_event(target, user, "edit_stroke", base + t)
    MaskRevision.append(target, mask(target.case, EDITED), "human", author=user)
    add_event(target, user, "submit", base + seconds)
    target.submit()


def annotate_with_model(target: Target, user, base: float, seconds: int, final=EDITED, model_version=None) -> None:
    """Box after 5 s, propagation requested at 6 s and answered at 16 s (10 s waiting), then strokes
    every 20 s until the submit at `seconds`: prompting 6 s, waiting 10 s, correcting seconds - 16."""
    add_event(target, user, "target_opened", base)
    add_event(target, user, "prompt_placed", base + 5)
    add_event(target, user, "propagation_requested", base + 6)
    proposal = MaskRevision.append(
        target, mask(target.case, PROPOSAL), "model", author=user, model_version=model_version
    )
    add_job(target, user, base + 6, base + 16, revision=proposal)
    add_event(target, user, "propagation_received", base + 16)
    for t in range(36, seconds, 20):
        add_event(target, user, "edit_stroke", base + t)
    if final is not PROPOSAL:
        MaskRevision.append(target, mask(target.case, final), "human", author=user)
    add_event(target, user, "submit", base + seconds)
    target.submit()


@pytest.fixture
def ct_case(project):
    return Case.objects.create(
        project=project, name="ct 1", modality="CT", shape=[4, 8, 8], spacing=[2.0, 1.0, 1.0],
        status=CaseStatus.READY,
    )  # fmt: skip
