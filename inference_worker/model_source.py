"""Which model a job runs, in order of preference:

1. the project's active ModelVersion (its checkpoint is a storage key or an absolute path);
2. settings.MEDSAM2_CHECKPOINT with settings.MEDSAM2_CONFIG (the operator's MedSAM2 file);
3. the bootstrap model shipped with medsam2 (medsam2.training.bootstrap.bootstrap_checkpoint_path(),
   with its config name in a JSON next to it).
Nothing usable -> ModelUnavailable, which fails the job with that message.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from annotation_app.rounds.models import ModelVersion
from inference_worker.model_cache import ModelSpec, ModelUnavailable


def _local_checkpoint(key: str) -> Path:
    """An absolute path as is; a storage key as a local file (copied once from remote storage)."""
    path = Path(key)
    if path.is_absolute():
        return path
    try:
        return Path(default_storage.path(key))
    except NotImplementedError:
        cached = Path(settings.VAR_DIR) / "cache" / key
        if not cached.exists():
            if not default_storage.exists(key):
                return cached  # reported as missing by the loader
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(cached.suffix + ".part")
            with default_storage.open(key, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(cached)
        return cached


def _bootstrap_spec() -> ModelSpec:
    try:
        from medsam2.training.bootstrap import bootstrap_checkpoint_path
    except ImportError as exc:
        raise ModelUnavailable(
            "no model available: the project has no active model version, MEDSAM2_CHECKPOINT is not set "
            f"and the bootstrap model is not installed ({exc})"
        ) from None
    try:
        path = Path(bootstrap_checkpoint_path())
    except Exception as exc:  # the helper raises when the file was never trained/shipped
        raise ModelUnavailable(f"no model available: bootstrap model missing ({exc})") from None
    if not path.is_file():
        raise ModelUnavailable(
            "no model available: the project has no active model version, MEDSAM2_CHECKPOINT is not set "
            f"and the bootstrap checkpoint {path} does not exist"
        )
    return ModelSpec(checkpoint=path, config=_bootstrap_config(path), name=f"bootstrap ({path.name})")


def _bootstrap_config(path: Path) -> str:
    candidates = [path.with_suffix(".json"), *sorted(path.parent.glob("*.json"))]
    for candidate in candidates:
        try:
            meta = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        for key in ("config", "config_name", "model_config"):
            if isinstance(meta, dict) and isinstance(meta.get(key), str):
                return meta[key]
    return "bootstrap_s"


def resolve_model_spec(project_id: int) -> ModelSpec:
    version = ModelVersion.active_for(project_id)
    if version is not None:
        return ModelSpec(
            checkpoint=_local_checkpoint(version.checkpoint_key),
            config=version.config_name,
            name=version.name,
            sha256=version.sha256,
            model_version_id=version.pk,
        )
    configured = getattr(settings, "MEDSAM2_CHECKPOINT", "")
    if configured:
        path = _local_checkpoint(configured)
        if not path.is_file():
            raise ModelUnavailable(f"MEDSAM2_CHECKPOINT points to a missing file: {path}")
        return ModelSpec(checkpoint=path, config=settings.MEDSAM2_CONFIG, name=path.name)
    return _bootstrap_spec()
