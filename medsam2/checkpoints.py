"""Obtaining MedSAM2 weights and normalising checkpoint files into plain state dicts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from medsam2.configs import DEFAULT_CONFIG, get_config

__all__ = [
    "CHECKPOINT_FILENAME",
    "HF_REPO_ID",
    "CheckpointError",
    "checkpoint_filter_fn",
    "download_medsam2",
]

# MedSAM2's published weights, as its config names them (medsam2.configs: medsam2_t512.hub_weights)
HF_REPO_ID, CHECKPOINT_FILENAME = get_config(DEFAULT_CONFIG).hub_weights.rsplit("/", 1)


class CheckpointError(RuntimeError):
    """A checkpoint does not match the model; lists missing, unexpected and mis-shaped keys."""

    def __init__(
        self,
        message: str | None = None,
        *,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        mismatched: list[str] | None = None,
    ) -> None:
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.mismatched = list(mismatched or [])
        if message is None:
            parts = ["checkpoint does not match the model"]
            if self.missing:
                parts.append(f"missing keys ({len(self.missing)}): {', '.join(self.missing)}")
            if self.unexpected:
                parts.append(f"unexpected keys ({len(self.unexpected)}): {', '.join(self.unexpected)}")
            if self.mismatched:
                parts.append(f"shape mismatches ({len(self.mismatched)}): {', '.join(self.mismatched)}")
            message = "; ".join(parts)
        super().__init__(message)


def checkpoint_filter_fn(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Return a plain state dict from ``{"model": sd}``, ``{"state_dict": sd}`` or a bare ``sd``.

    Keys prefixed ``module.`` (DataParallel/DDP) or ``_orig_mod.`` (torch.compile) are unprefixed.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"checkpoint must be a mapping, got {type(checkpoint).__name__}")
    sd: Any = checkpoint
    for key in ("model", "state_dict"):
        if key in sd and isinstance(sd[key], Mapping):
            sd = sd[key]
            break
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"checkpoint entry {k!r} is not a tensor ({type(v).__name__})")
        name = k
        for prefix in ("module.", "_orig_mod."):
            while name.startswith(prefix):
                name = name[len(prefix) :]
        if name in out:
            raise CheckpointError(f"duplicate key after removing prefixes: {name!r}")
        out[name] = v
    return out


def download_medsam2(dest_dir: str | os.PathLike[str], filename: str = CHECKPOINT_FILENAME) -> Path:
    """Fetch ``MedSAM2_latest.pt`` from the Hugging Face Hub into ``dest_dir`` and return its path.

    Works offline when the file is already in ``dest_dir``. Without network access (or with
    ``HF_HUB_OFFLINE=1``) it raises a RuntimeError that says where to put the file by hand.
    """
    dest = Path(dest_dir)
    target = dest / filename
    if target.is_file():
        return target
    manual = (
        f"could not download {filename} from huggingface.co/{HF_REPO_ID}. Download it on a machine with "
        f"internet access (https://huggingface.co/{HF_REPO_ID}/resolve/main/{filename}) and copy it to "
        f"{target}"
    )
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        raise RuntimeError(manual + " (huggingface_hub is not installed)") from exc
    dest.mkdir(parents=True, exist_ok=True)
    try:
        path = hf_hub_download(repo_id=HF_REPO_ID, filename=filename, local_dir=str(dest))
    except Exception as exc:  # offline mode, DNS failure, HTTP errors: all mean "do it by hand"
        raise RuntimeError(f"{manual}. Cause: {type(exc).__name__}: {exc}") from exc
    return Path(path)
