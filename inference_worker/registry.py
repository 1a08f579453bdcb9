"""The model registry on the worker side: a registered checkpoint becomes usable only after a strict load.

`verify_version(version_id)` (VERIFY_CHECKPOINT, default queue): a pending ModelVersion's checkpoint is
read from the project's storage, hashed (and compared with the sha256 the uploader gave, if any) and
loaded into its config with `medsam2.build.build_model` (weights only, every key present, no key left
over, every shape equal). Success makes it a candidate with its checksum; any failure rejects it with a
one-line reason that names the storage key, never a folder of the server.
"""

from __future__ import annotations

import logging

from annotation_app.rounds.models import ModelStatus, ModelVersion
from inference_worker.model_cache import ModelUnavailable
from inference_worker.model_source import version_checkpoint

log = logging.getLogger(__name__)


def verify_version(version_id: int) -> str:
    """"candidate", "rejected" or "skipped" (gone, or not pending any more: a redelivery)."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None or version.status != ModelStatus.PENDING:
        return "skipped"
    try:
        sha256, parameters = _strict_load(version)
    except ModelUnavailable as exc:
        version.refuse(str(exc))
        return str(version.status)
    version.verified(sha256, {"parameters": parameters})
    return str(version.status)


def _strict_load(version: ModelVersion) -> tuple[str, int]:
    from medsam2.build import build_model, file_sha256
    from medsam2.checkpoints import CheckpointError

    path = version_checkpoint(version)
    sha256 = file_sha256(path)
    if version.sha256 and version.sha256 != sha256:
        raise ModelUnavailable(f"the file's sha256 is {sha256}, not the {version.sha256} given")
    try:
        model = build_model(version.config_name, path)
    except KeyError as exc:
        raise ModelUnavailable(str(exc.args[0] if exc.args else exc)) from None
    except CheckpointError as exc:
        summary = "; ".join(part[:300] for part in str(exc).split("; "))
        raise ModelUnavailable(f"the checkpoint does not fit config {version.config_name}: {summary}") from None
    except Exception as exc:  # not a (weights-only) torch file: a pickle with code, a truncated zip, ...
        log.warning("checkpoint of version %s did not load: %r", version.pk, exc)
        raise ModelUnavailable(
            f"the file is not a weights-only PyTorch checkpoint ({type(exc).__name__})"
        ) from None
    return sha256, sum(p.numel() for p in model.parameters())
