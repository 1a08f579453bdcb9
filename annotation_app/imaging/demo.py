"""The demo: a project with users, an open round and four synthetic cases, made idempotently.

The CT volume is written as a real DICOM series and ingested through the normal DICOM path; the MR
volume goes through NIfTI and the two videos through MP4, so the demo exercises every reader. Ground
truth masks are stored beside each case (image_meta["ground_truth_key"], a (D,H,W)/(T,H,W) uint8 .npy in
canonical order), never as a mask revision. One draft target per CT lesion is created at its key slice.
"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from annotation_app.imaging.ingest import stage_upload, staging_root
from annotation_app.imaging.io.dicom_write import write_series
from annotation_app.imaging.io.video_io import write_mp4
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.imaging.storage import array_to_npy_bytes
from annotation_app.lib.roles import Role
from annotation_app.projects.models import Project

PROJECT_NAME = "Demo CT lesions"
USERS = {"demo-annotator": Role.ANNOTATOR, "demo-reviewer": Role.REVIEWER, "demo-manager": Role.MANAGER}
DEFAULT_PASSWORD = "demo-pass-123"


@dataclass(frozen=True)
class DemoSize:
    ct: tuple[int, int, int]
    mr: tuple[int, int, int]
    frames: int
    video: tuple[int, int]


FULL = DemoSize(ct=(48, 256, 256), mr=(32, 192, 192), frames=48, video=(224, 224))
SMALL = DemoSize(ct=(12, 64, 64), mr=(8, 48, 48), frames=6, video=(64, 64))


def demo_password() -> str:
    return settings.DEMO_PASSWORD or DEFAULT_PASSWORD


def ensure_users(project) -> dict:
    users = {}
    for username, role in USERS.items():
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_password(demo_password())
            user.save()
        project.add_member(user, role)
        if role == Role.MANAGER:
            # the demo's manager may start projects (PROJECT_CREATORS=staff: users a staff member allowed)
            allowed = Permission.objects.get(content_type__app_label="projects", codename="add_project")
            user.user_permissions.add(allowed)
        users[username] = user
    return users


def ensure_round(project):
    from annotation_app.rounds.models import Round

    current = Round.current_for(project.pk)
    if current is None:
        current = Round.objects.create(project=project, number=Round.next_number(project.pk))
    return current


def _store_ground_truth(case: Case, labels: np.ndarray) -> None:
    if list(labels.shape[:3]) != [int(s) for s in case.shape[:3]]:
        raise RuntimeError(f"ground truth {labels.shape} does not match case {case.shape}")
    key = f"cases/{case.project_id}/{case.pk}/ground_truth.npy"
    if default_storage.exists(key):
        default_storage.delete(key)
    key = default_storage.save(key, ContentFile(array_to_npy_bytes(labels.astype(np.uint8))))
    meta = dict(case.image_meta)
    meta["ground_truth_key"] = key
    Case.objects.filter(pk=case.pk).update(image_meta=meta)
    case.refresh_from_db()


def _ingest(project, name, files, modality, assignee) -> Case:
    cases = stage_upload(
        project, files, name=name, modality=modality, assignee=assignee, run="sync", extra_meta={"demo": True}
    )
    case = cases[0]
    if case.status != CaseStatus.READY:
        raise RuntimeError(f"demo case {name!r} failed to ingest: {case.error}")
    return case


def synthetic_module():
    """`medsam2.synthetic`: numpy and scipy only (medsam2's top level is lazy, so torch stays unloaded)."""
    from medsam2 import synthetic

    return synthetic


def load_demo(small: bool = False, seed: int = 7, log=print) -> Project:
    synthetic = synthetic_module()

    size = SMALL if small else FULL
    # Project names are not unique across the server: the demo's own project is the one nobody created
    # through the API (a user's project of the same name is left alone).
    project, _ = Project.objects.get_or_create(
        name=PROJECT_NAME,
        created_by=None,
        defaults={"modality": "CT", "description": "Synthetic CT, MRI, echo and endoscopy cases."},
    )
    users = ensure_users(project)
    round_ = ensure_round(project)
    annotator = users["demo-annotator"]
    existing = set(Case.objects.filter(project=project).values_list("name", flat=True))
    work = Path(tempfile.mkdtemp(prefix="demo-", dir=staging_root()))
    try:
        if "Demo CT (DICOM)" not in existing:
            ct = synthetic.make_ct_volume(seed, shape=size.ct, n_lesions=3)
            paths = write_series(
                ct.image,
                work / "ct",
                spacing=ct.spacing,
                origin=(-100.0, -100.0, 0.0),
                series_description="Demo synthetic abdomen CT",
            )
            with transaction.atomic():
                case = _ingest(project, "Demo CT (DICOM)", [(p.name, p) for p in paths], "CT", annotator)
                _store_ground_truth(case, ct.labels)
                _create_lesion_targets(case, ct, round_, users["demo-manager"])
            log(f"created {case.name} {case.shape} with {len(ct.lesions)} lesion targets")
        if "Demo MRI (NIfTI)" not in existing:
            mr = synthetic.make_mr_volume(seed + 1, shape=size.mr, n_lesions=2)
            image = sitk.GetImageFromArray(mr.image)
            image.SetSpacing([float(s) for s in reversed(mr.spacing)])
            path = work / "mr.nii.gz"
            sitk.WriteImage(image, str(path))
            with transaction.atomic():
                case = _ingest(project, "Demo MRI (NIfTI)", [(path.name, path)], "MR", annotator)
                _store_ground_truth(case, mr.labels)
            log(f"created {case.name} {case.shape}")
        for name, maker, modality in (
            ("Demo echo (MP4)", synthetic.make_echo_video, "US"),
            ("Demo endoscopy (MP4)", synthetic.make_endoscopy_video, "ES"),
        ):
            if name in existing:
                continue
            video = maker(seed + 2, n_frames=size.frames, size=size.video)
            path = write_mp4(work / f"{modality.lower()}.mp4", video.frames, fps=video.fps)
            with transaction.atomic():
                case = _ingest(project, name, [(path.name, path)], modality, annotator)
                _store_ground_truth(case, video.masks)
            log(f"created {case.name} {case.shape}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return project


def _create_lesion_targets(case: Case, volume, round_, author) -> None:
    from annotation_app.annotations.models import Target, TargetStatus

    for lesion in volume.lesions:
        if not (volume.labels == lesion.label).any():
            continue
        key = volume.key_slice(lesion.label)
        # the lesion's centroid on its key slice, so two lesions on one slice can be told apart
        ys, xs = np.nonzero(volume.labels[key] == lesion.label)
        Target.objects.create(
            case=case,
            label="lesion",
            round=round_,
            status=TargetStatus.DRAFT,
            key_frame=key,
            location={"point": [round(float(xs.mean()) + 0.5, 1), round(float(ys.mean()) + 0.5, 1)]},
            created_by=author,
        )
