"""Fine-tuning MedSAM2/SAM2 models: data, prompts, losses, optimiser, loop, evaluation, bootstrap.

Names are loaded lazily so that ``import medsam2.training`` stays cheap; the submodules are
``data``, ``prompts``, ``losses``, ``optim``, ``forward``, ``loop``, ``metrics``, ``evaluate``
and ``bootstrap``. CLI: ``python -m medsam2.training bootstrap --out medsam2/weights/``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Case": "data", "ClipDataset": "data", "AugmentConfig": "data", "load_nifti_case": "data",
    "TrainConfig": "loop", "PromptConfig": "loop", "TrainResult": "loop", "train": "loop",
    "OptimConfig": "optim", "param_groups": "optim", "LossWeights": "losses",
    "evaluate": "evaluate", "EvalResult": "evaluate",
    "dice_score": "metrics", "normalized_surface_distance": "metrics",
    "BootstrapConfig": "bootstrap", "run_bootstrap": "bootstrap",
}
__all__ = sorted([*_EXPORTS, "bootstrap_checkpoint_path"])


def bootstrap_checkpoint_path() -> Any:
    from medsam2.weights import bootstrap_checkpoint_path as path

    return path()


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"medsam2.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'medsam2.training' has no attribute {name!r}")
