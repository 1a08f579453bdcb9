"""Small builders for propagation tests: a ready case with a stored synthetic array, a target with a box
prompt, and a tiny MedSAM2 checkpoint registered as the project's active model."""

from pathlib import Path

import numpy as np
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from annotation_app.annotations.models import Prompt, PromptKind, Target
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.imaging.storage import save_case_array
from annotation_app.rounds.models import ModelVersion, checkpoint_prefix


def blob_volume(frames: int = 12, size: int = 64, seed: int = 0) -> np.ndarray:
    """int16 CT-like volume (D, H, W): soft tissue with a bright sphere in the middle frames."""
    rng = np.random.default_rng(seed)
    vol = rng.normal(40, 10, size=(frames, size, size)).astype(np.int16)
    z, y, x = np.ogrid[:frames, :size, :size]
    sphere = ((z - frames / 2) / (frames / 3)) ** 2 + ((y - size / 2) / 10) ** 2 + ((x - size / 2) / 10) ** 2
    vol[sphere <= 1] = 180
    return vol


def make_case(project, array: np.ndarray | None = None, name: str = "case") -> Case:
    array = blob_volume() if array is None else array
    case = Case.objects.create(
        project=project,
        name=name,
        modality="CT",
        shape=list(array.shape),
        spacing=[2.0, 1.0, 1.0],
        status=CaseStatus.READY,
    )
    case.image_key = save_case_array(case, array)
    case.save(update_fields=["image_key"])
    return case


def make_target(case: Case, user, box=(22, 22, 42, 42), frame: int | None = None) -> Target:
    frame = case.n_frames // 2 if frame is None else frame
    target = Target.objects.create(case=case, label="lesion", key_frame=frame, created_by=user)
    Prompt.objects.create(target=target, frame=frame, kind=PromptKind.BOX, payload={"box": list(box)}, author=user)
    return target


def tiny_model_version(project, directory: Path, name: str = "tiny", seed: int = 0) -> ModelVersion:
    """A random-weight `test_tiny` checkpoint saved with medsam2's own writer into the project's storage
    (models/<project>/<name>.pt), registered as verified and made the active model."""
    import torch

    from medsam2.build import build_model, save_checkpoint

    torch.manual_seed(seed)
    model = build_model("test_tiny")
    path = Path(directory) / f"{name}.pt"
    sha = save_checkpoint(model, path)
    with open(path, "rb") as handle:
        key = default_storage.save(f"{checkpoint_prefix(project.pk)}{name}.pt", File(handle, name=path.name))
    version = ModelVersion.objects.create(
        project=project,
        name=name,
        checkpoint_key=key,
        sha256=sha,
        config_name="test_tiny",
        verified_at=timezone.now(),
    )
    version.activate()
    return version
