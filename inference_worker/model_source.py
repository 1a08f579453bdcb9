"""Which model a job runs, and where its checkpoint file is.

A job's model, in order of preference:
1. the model version pinned by the target's round (rounds pin the project's active version when they
   open; a round pinned to no version uses the installation's default, 3 below);
2. for a target outside any round, the project's active ModelVersion;
3. the installation's default: settings.MEDSAM2_CHECKPOINT with settings.MEDSAM2_CONFIG (the operator's
   MedSAM2 file), else the weights the config registry ships (medsam2.configs.pretrained_weights: the
   bootstrap model in medsam2/weights/ with its config), the same lookup as the CLI's.
Nothing usable -> ModelUnavailable, which fails the job with that message.

A model version's checkpoint is a storage key under models/<project>/ (never a server path, checked
again here although the database already refuses other keys); messages name the key, never the folder
it resolves to.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from annotation_app.lib.storage_keys import StorageKeyError, check_storage_key
from annotation_app.rounds.models import ModelVersion, Round, checkpoint_prefix
from inference_worker.model_cache import ModelSpec, ModelUnavailable
from medsam2 import configs


def storage_file(key: str) -> Path:
    """A storage key as a local file: the file itself on local storage, a cached copy of a remote one.

    The key must already be checked (check_storage_key): only then can it not leave the storage root."""
    try:
        return Path(default_storage.path(key))
    except NotImplementedError:
        cached = Path(settings.VAR_DIR) / "cache" / key
        if not cached.exists():
            if not default_storage.exists(key):
                return cached  # reported as missing by the caller
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(cached.suffix + ".part")
            with default_storage.open(key, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(cached)
        return cached


def version_checkpoint(version: ModelVersion) -> Path:
    """The local checkpoint file of `version`; ModelUnavailable when its key is not one of its project's
    storage keys or nothing is stored there."""
    try:
        key = check_storage_key(version.checkpoint_key, checkpoint_prefix(version.project_id))
    except StorageKeyError as exc:
        raise ModelUnavailable(f"model {version.name} has no usable checkpoint: {exc}") from None
    path = storage_file(key)
    if not path.is_file():
        raise ModelUnavailable(f"model checkpoint not found in storage: {key} (model {version.name})")
    return path


def spec_for_version(version: ModelVersion) -> ModelSpec:
    return ModelSpec(
        checkpoint=version_checkpoint(version),
        config=version.config_name,
        name=version.name,
        sha256=version.sha256,
        model_version_id=version.pk,
        source=version.checkpoint_key,
    )


def _bootstrap_spec() -> ModelSpec:
    path, cfg = configs.pretrained_weights(configs.PRETRAINED_DEFAULT)
    if not path.is_file():
        raise ModelUnavailable(
            "no model available: the project has no active model version, MEDSAM2_CHECKPOINT is not set "
            "and the bootstrap checkpoint is not installed (medsam2/weights/)"
        )
    return ModelSpec(checkpoint=path, config=cfg.name, name=f"bootstrap ({path.name})",
                     source=f"medsam2/weights/{path.name}")  # fmt: skip


def default_spec() -> ModelSpec:
    """The installation's default model: the operator's MEDSAM2_CHECKPOINT, else the bootstrap model."""
    configured = getattr(settings, "MEDSAM2_CHECKPOINT", "")
    if configured:
        # The operator's setting: an absolute path on the worker, or a storage key.
        path = Path(configured) if Path(configured).is_absolute() else storage_file(check_storage_key(configured))
        if not path.is_file():
            raise ModelUnavailable(f"MEDSAM2_CHECKPOINT points to a missing file: {configured}")
        return ModelSpec(checkpoint=path, config=settings.MEDSAM2_CONFIG, name=path.name, source=configured)
    return _bootstrap_spec()


def resolve_model_spec(project_id: int, round_: Round | None = None) -> ModelSpec:
    """The model for a job of `project_id` whose target belongs to `round_` (see the module docstring)."""
    if round_ is not None:
        version = round_.model_version
    else:
        version = ModelVersion.active_for(project_id)
    if version is not None:
        return spec_for_version(version)
    return default_spec()
