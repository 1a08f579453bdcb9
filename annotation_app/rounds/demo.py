"""The demo's learning loop (manage.py load_demo, after the cases of imaging/demo.py).

The demo project gets a history a newcomer can continue from the admin page:
- the shipped bootstrap model (bootstrap_s, trained on synthetic CT only) as its first model version;
- round 1, closed: the MRI and echo cases annotated and accepted (their synthetic ground truth), and a
  second MRI volume and echo video held out, annotated the same way: the evaluation set;
- round 2, open and pinned to the bootstrap model: the CT lesions waiting for an annotator.
Training round 1 on a CPU then takes minutes and the gate shows held-out Dice against the bootstrap's
(on the echo, the bootstrap model loses the left ventricle within a heartbeat).
Idempotent: a project that already has a closed round is left alone.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from annotation_app.annotations.models import MaskRevision, MaskSource, Target, TargetStatus
from annotation_app.imaging import demo as imaging_demo
from annotation_app.imaging.ingest import staging_root
from annotation_app.imaging.io.video_io import write_mp4
from annotation_app.imaging.models import Case
from annotation_app.rounds import lifecycle
from annotation_app.rounds.models import HeldOutCase, ModelVersion, Round, RoundStatus, checkpoint_prefix
from medsam2.weights import BOOTSTRAP_CONFIG, bootstrap_checkpoint_path, bootstrap_metadata_path

TRAINED = ("Demo MRI (NIfTI)", "Demo echo (MP4)")
HELD_OUT_MRI = "Demo MRI 2 (NIfTI, held out)"
HELD_OUT_ECHO = "Demo echo 2 (MP4, held out)"
ECHO_LABEL = "left ventricle"


def bootstrap_version(project) -> ModelVersion:
    """The shipped bootstrap checkpoint, copied into the project's storage, as a verified version."""
    existing = ModelVersion.objects.filter(project=project, name="bootstrap").first()
    if existing is not None:
        return existing
    path = bootstrap_checkpoint_path()
    with open(path, "rb") as handle:
        key = default_storage.save(f"{checkpoint_prefix(project.pk)}{path.name}", File(handle, name=path.name))
    meta = json.loads(bootstrap_metadata_path().read_text())
    return ModelVersion.objects.create(
        project=project,
        name="bootstrap",
        checkpoint_key=key,
        sha256=meta.get("sha256", ""),
        config_name=BOOTSTRAP_CONFIG,
        metrics={"synthetic_ct_held_out": meta.get("validation", {})},
        hyperparameters={"bootstrap": meta.get("bootstrap", {})},
        verified_at=timezone.now(),
    )


def _held_out_cases(project, size, seed: int, annotator, log) -> list[Case]:
    synthetic = imaging_demo.synthetic_module()
    existing = {c.name: c for c in Case.objects.filter(project=project, name__in=[HELD_OUT_MRI, HELD_OUT_ECHO])}
    work = Path(tempfile.mkdtemp(prefix="demo-loop-", dir=staging_root()))
    try:
        if HELD_OUT_MRI not in existing:
            mr = synthetic.make_mr_volume(seed + 11, shape=size.mr, n_lesions=2)
            image = sitk.GetImageFromArray(mr.image)
            image.SetSpacing([float(s) for s in reversed(mr.spacing)])
            path = work / "mr2.nii.gz"
            sitk.WriteImage(image, str(path))
            case = imaging_demo._ingest(project, HELD_OUT_MRI, [(path.name, path)], "MR", annotator)
            imaging_demo._store_ground_truth(case, mr.labels)
            existing[HELD_OUT_MRI] = case
            log(f"created {case.name} {case.shape}")
        if HELD_OUT_ECHO not in existing:
            video = synthetic.make_echo_video(seed + 12, n_frames=size.frames, size=size.video)
            path = write_mp4(work / "echo2.mp4", video.frames, fps=video.fps)
            case = imaging_demo._ingest(project, HELD_OUT_ECHO, [(path.name, path)], "US", annotator)
            imaging_demo._store_ground_truth(case, video.masks)
            existing[HELD_OUT_ECHO] = case
            log(f"created {case.name} {case.shape}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [existing[HELD_OUT_MRI], existing[HELD_OUT_ECHO]]


def _accept_ground_truth(case: Case, round_: Round, author, reviewer) -> int:
    """One accepted target per object of the case's stored ground truth (MRI lesions, the echo's ventricle)."""
    with default_storage.open(case.image_meta["ground_truth_key"]) as handle:
        truth = np.load(handle)
    count = 0
    for object_id in (int(i) for i in np.unique(truth) if i != 0):
        mask = truth == object_id
        key = int(mask.reshape(mask.shape[0], -1).sum(axis=1).argmax())
        target = Target.objects.create(
            case=case, label=ECHO_LABEL if case.modality == "US" else "lesion", round=round_, key_frame=key,
            created_by=author,
        )  # fmt: skip
        MaskRevision.append(target, mask, str(MaskSource.IMPORT), author=author, note="synthetic ground truth (demo)")
        Target.objects.filter(pk=target.pk).update(
            status=TargetStatus.ACCEPTED, submitted_at=timezone.now(), reviewed_by=reviewer,
            reviewed_at=timezone.now(), review_comment="demo: the synthetic ground truth",
        )  # fmt: skip
        count += 1
    return count


def seed_learning_loop(project, small: bool = False, seed: int = 7, log=print) -> Round | None:
    """Round 1 closed with accepted MRI and echo masks and held-out cases; see the module docstring."""
    if Round.objects.filter(project=project).exclude(snapshot_hash="").exists():
        return None
    size = imaging_demo.SMALL if small else imaging_demo.FULL
    users = imaging_demo.ensure_users(project)
    manager, reviewer = users["demo-manager"], users["demo-reviewer"]
    held_out = _held_out_cases(project, size, seed, users["demo-annotator"], log)
    trained = list(Case.objects.filter(project=project, name__in=TRAINED))
    if ECHO_LABEL not in project.label_names:
        project.labels = [*project.labels, {"name": ECHO_LABEL, "color": "#40a9ff"}]
        project.save(update_fields=["labels"])
    with transaction.atomic():
        bootstrap = bootstrap_version(project)
        bootstrap.activate(reason="the shipped bootstrap model (synthetic CT only)")
        current = Round.current_for(project.pk)
        if current is not None:
            # the demo's open round (the CT lesions) comes after the closed round made here: it steps
            # aside (one open round per project) and takes the next number
            Round.objects.filter(pk=current.pk).update(status=RoundStatus.CLOSED, number=Round.next_number(project.pk))
        number = current.number if current is not None else Round.next_number(project.pk)
        first = Round.objects.create(project=project, number=number, model_version=bootstrap)
        targets = sum(_accept_ground_truth(case, first, manager, reviewer) for case in [*trained, *held_out])
        for case in held_out:
            HeldOutCase.objects.get_or_create(case=case, defaults={"project": project, "marked_by": manager})
        lifecycle.close_round(first)
        if current is not None:
            Round.objects.filter(pk=current.pk).update(status=RoundStatus.OPEN, model_version=bootstrap)
    log(f"round 1 closed: {targets} accepted targets on the MRI and echo cases, {len(held_out)} held out")
    return first

