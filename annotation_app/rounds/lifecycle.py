"""The round lifecycle: open (pin the model), close (freeze the training snapshot), train (queue a run).

- `open_round`: one open round per project; a model-assisted round pins the project's active model
  version (None: the installation's default model), so every proposal of the round comes from it however
  the active version changes later. A manual-baseline round pins nothing and gets no proposals.
- `close_round`: the round's training snapshot is frozen in the same transaction as the status: the
  accepted final revision of every target of this and earlier rounds, split into training and held-out
  by the project's held-out cases (the default split is made first where a modality has none), with a
  content hash over the revisions and their mask bytes. A training run reads exactly these revisions,
  so it can be reproduced whatever is annotated afterwards.
- `start_training`: a queued TrainingRun for a closed (or already trained) round, sent to the training
  queue after commit; one unfinished run per round.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation_app.annotations.models import MaskRevision, Target, TargetStatus
from annotation_app.imaging.models import CaseStatus
from annotation_app.lib import tasks
from annotation_app.lib.errors import Conflict
from annotation_app.projects.models import Project
from annotation_app.rounds.models import (
    RUN_FINISHED,
    HeldOutCase,
    ModelVersion,
    Round,
    RoundStatus,
    TrainingRun,
    TrainingStatus,
)

#: share of a modality's cases the default split holds out (at least one where it has two or more)
DEFAULT_HELD_OUT_SHARE = 0.2


def open_round(project: Project, is_manual_baseline: bool = False, model_version=None, **fields) -> Round:
    """The project's next round, pinned to `model_version` or else the active one; Conflict if one is open."""
    with transaction.atomic():
        # Lock the project row: two managers opening a round at once take turns, so the second
        # sees the first one's open round (409) instead of racing it for the same number.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        if Round.objects.filter(project=project, status=RoundStatus.OPEN).exists():
            raise Conflict("this project already has an open round; close it first")
        if model_version is None and not is_manual_baseline:
            model_version = ModelVersion.active_for(project.pk)
        return Round.objects.create(
            project=project,
            number=Round.next_number(project.pk),
            is_manual_baseline=is_manual_baseline,
            model_version=None if is_manual_baseline else model_version,
            **fields,
        )


def close_round(round_: Round) -> Round:
    """open -> closed with the frozen training snapshot (see the module docstring)."""
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round_.pk)
        if locked.status != RoundStatus.OPEN:
            raise Conflict(f"round {locked.number} is not open")
        default_held_out(locked.project_id, locked.number)
        snapshot = build_snapshot(locked)
        locked.freeze(snapshot, snapshot_hash(snapshot))
    round_.refresh_from_db()
    return round_


def accepted_revisions(project_id: int, up_to_round: int) -> list[MaskRevision]:
    """The final revision of each accepted target of rounds 1..up_to_round (ready cases only)."""
    targets = Target.objects.filter(
        case__project_id=project_id,
        case__status=CaseStatus.READY,
        status=TargetStatus.ACCEPTED,
        round__number__lte=up_to_round,
    )
    revisions = []
    for target in targets.order_by("pk"):
        revision = target.revisions.order_by("-number").first()
        if revision is not None:
            revisions.append(revision)
    return revisions


def build_snapshot(round_: Round) -> dict:
    held_out = set(HeldOutCase.objects.filter(project_id=round_.project_id).values_list("case_id", flat=True))
    snapshot: dict[str, list[int]] = {"train": [], "held_out": []}
    for revision in accepted_revisions(round_.project_id, round_.number):
        part = "held_out" if revision.target.case_id in held_out else "train"
        snapshot[part].append(revision.pk)
    return snapshot


def snapshot_hash(snapshot: dict) -> str:
    """sha256 over each revision's (part, id, target, case, shape, sha256 of its stored mask bytes)."""
    ids = [pk for part in ("train", "held_out") for pk in snapshot.get(part, [])]
    rows = {r.pk: r for r in MaskRevision.objects.filter(pk__in=ids).select_related("target")}
    manifest = [
        [part, pk, rows[pk].target_id, rows[pk].target.case_id, rows[pk].shape,
         hashlib.sha256(bytes(rows[pk].data)).hexdigest()]
        for part in ("train", "held_out")
        for pk in snapshot.get(part, [])
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(manifest, separators=(",", ":")).encode()).hexdigest()


def _split_rank(project_id: int, case_id: int) -> str:
    return hashlib.sha256(f"held-out:{project_id}:{case_id}".encode()).hexdigest()


def default_held_out(project_id: int, up_to_round: int) -> list[HeldOutCase]:
    """Hold out cases of each modality that has none yet: DEFAULT_HELD_OUT_SHARE of the cases with accepted
    targets (at least one, where the modality has two or more such cases), chosen by a hash of the case id
    (deterministic), preferring cases no earlier snapshot trained on. A lone case is trained on."""
    by_modality: dict[str, list[int]] = defaultdict(list)
    for revision in accepted_revisions(project_id, up_to_round):
        case = revision.target.case
        if case.pk not in by_modality[case.modality]:
            by_modality[case.modality].append(case.pk)
    held = set(HeldOutCase.objects.filter(project_id=project_id).values_list("case_id", flat=True))
    snapshots = Round.objects.filter(project_id=project_id).exclude(snapshot={}).values_list("snapshot", flat=True)
    trained_ids = [pk for snapshot in snapshots for pk in snapshot.get("train", [])]
    trained_before = set(MaskRevision.objects.filter(pk__in=trained_ids).values_list("target__case_id", flat=True))
    made = []
    for _modality, case_ids in sorted(by_modality.items()):
        if len(case_ids) < 2 or held & set(case_ids):
            continue
        count = max(1, math.floor(DEFAULT_HELD_OUT_SHARE * len(case_ids)))
        ranked = sorted(case_ids, key=lambda pk: (pk in trained_before, _split_rank(project_id, pk)))
        for case_id in ranked[:count]:
            made.append(HeldOutCase.objects.create(project_id=project_id, case_id=case_id, source="default"))
    return made


def start_training(round_: Round, user, hyperparameters: dict | None = None, **fields) -> TrainingRun:
    """A queued run on the round's snapshot from its pinned model; sent after commit."""
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round_.pk)
        if locked.status == RoundStatus.OPEN or not locked.snapshot_hash:
            raise Conflict(f"round {locked.number} is {locked.status}; close it first (that freezes its snapshot)")
        if not locked.snapshot.get("train"):
            raise Conflict(f"round {locked.number}'s snapshot has no accepted masks outside the held-out cases")
        busy = TrainingRun.objects.filter(round=locked).exclude(status__in=RUN_FINISHED).first()
        if busy is not None:
            raise Conflict(f"training run {busy.pk} of round {locked.number} is already {busy.status}")
        run = TrainingRun.objects.create(
            project_id=locked.project_id,
            round=locked,
            base_model=locked.model_version,
            hyperparameters=hyperparameters or {},
            requested_by=user if getattr(user, "is_authenticated", False) else None,
            **fields,
        )
        tasks.send(tasks.FINE_TUNE, run.pk, task_id=run.celery_task_id or None, on_error=_fail_run(run))
    return run


def _fail_run(run: TrainingRun):
    def fail(message: str) -> None:
        run.finish("failed", error=message)

    return fail



def requeue_stale_runs(stale_after_s: float | None = None, max_attempts: int | None = None) -> list[int]:
    """Send again the training runs whose worker stopped beating (every worker's recovery loop calls this;
    inference_worker/recovery.py); the new delivery resumes from the run's last checkpoint in storage.
    A run that lost its worker `max_attempts` times fails instead of looping."""
    stale_after = settings.TRAINING_STALE_AFTER_S if stale_after_s is None else stale_after_s
    attempts = settings.TRAINING_MAX_ATTEMPTS if max_attempts is None else max_attempts
    requeued = []
    for run in TrainingRun.stale_running(stale_after):
        cutoff = timezone.now() - timedelta(seconds=stale_after)
        stale = TrainingRun.objects.filter(pk=run.pk, status=TrainingStatus.RUNNING, heartbeat_at__lt=cutoff)
        if run.attempts >= attempts:
            error = f"the worker was lost {run.attempts} times while training (last: {run.worker}); giving up"
            if stale.update(status=TrainingStatus.FAILED, finished_at=timezone.now(), error=error):
                Round.objects.filter(pk=run.round_id, status=RoundStatus.TRAINING).update(status=RoundStatus.CLOSED)
            continue
        task_id = str(uuid.uuid4())
        if stale.update(status=TrainingStatus.QUEUED, worker="", celery_task_id=task_id):
            run.append_log(f"worker {run.worker or '?'} stopped beating; sent again (resumes from its checkpoint)")
            tasks.send(tasks.FINE_TUNE, run.pk, task_id=task_id)
            requeued.append(run.pk)
    return requeued
