"""Model versions for tests: a (fake) checkpoint stored under the project's models/ folder."""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from annotation_app.rounds.models import ModelVersion, checkpoint_prefix


def stored_checkpoint(project, name: str, content: bytes = b"PK\x03\x04 not really weights") -> str:
    """Store `content` as models/<project>/<name>.pt and return its storage key."""
    return default_storage.save(f"{checkpoint_prefix(project.pk)}{name}.pt", ContentFile(content))


def make_version(project, name: str, **fields) -> ModelVersion:
    """A verified version (as if a worker had loaded it) whose checkpoint is in storage."""
    fields.setdefault("verified_at", timezone.now())
    return ModelVersion.objects.create(
        project=project, name=name, checkpoint_key=stored_checkpoint(project, name), **fields
    )


def register_bootstrap(project, activate: bool = True) -> ModelVersion:
    """The shipped bootstrap_s checkpoint copied into the project's storage as a verified version."""
    from django.core.files import File

    from medsam2.weights import BOOTSTRAP_CONFIG, bootstrap_checkpoint_path

    path = bootstrap_checkpoint_path()
    with open(path, "rb") as handle:
        key = default_storage.save(f"{checkpoint_prefix(project.pk)}{path.name}", File(handle, name=path.name))
    version = ModelVersion.objects.create(
        project=project, name="bootstrap", checkpoint_key=key, config_name=BOOTSTRAP_CONFIG, verified_at=timezone.now()
    )
    if activate:
        version.activate()
    return version


def echo_case(project, seed: int, frames: int = 16, size: int = 64, name: str = ""):
    """A ready synthetic echo video case (T, H, W) and its left-ventricle ground truth (T, H, W) bool."""
    from annotation_app.imaging.models import Case, CaseKind, CaseStatus
    from annotation_app.imaging.storage import save_case_array
    from medsam2.synthetic import make_echo_video

    video = make_echo_video(seed, n_frames=frames, size=(size, size))
    case = Case.objects.create(
        project=project, name=name or f"echo {seed}", kind=CaseKind.VIDEO, modality="US",
        shape=list(video.frames.shape), spacing=[1.0, 1.0, 1.0], status=CaseStatus.READY,
    )  # fmt: skip
    case.image_key = save_case_array(case, video.frames)
    case.save(update_fields=["image_key"])
    return case, video.masks.astype(bool)


def accepted_target(case, round_, mask, user=None, label: str = "lesion"):
    """A target of `round_` whose accepted final revision is `mask` (as a reviewer's acceptance leaves it)."""
    from annotation_app.annotations.models import MaskRevision, Target, TargetStatus

    key = int(mask.reshape(mask.shape[0], -1).sum(axis=1).argmax())
    target = Target.objects.create(case=case, label=label, round=round_, key_frame=key, created_by=user)
    MaskRevision.append(target, mask, "human", author=user)
    Target.objects.filter(pk=target.pk).update(status=TargetStatus.ACCEPTED)
    target.refresh_from_db()
    return target


def trainable_round(project, user, held_out: bool = False):
    """A closed round whose snapshot holds one accepted mask (on a small stored blob volume)."""
    import numpy as np

    from annotation_app.propagation.tests.factories import make_case
    from annotation_app.rounds import lifecycle
    from annotation_app.rounds.models import HeldOutCase

    round_ = lifecycle.open_round(project)
    for index in range(2 if held_out else 1):
        case = make_case(project, name=f"case {index}")
        mask = np.zeros(case.shape, dtype=bool)
        mask[4:8, 26:38, 26:38] = True
        accepted_target(case, round_, mask, user)
        if index == 1:
            HeldOutCase.objects.create(project=project, case=case)
    return lifecycle.close_round(round_)
