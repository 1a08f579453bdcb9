"""MedSAM2 in pure PyTorch: model, checkpoints and an interactive volume/video predictor.

Names are imported lazily, so torch-free submodules (`medsam2.synthetic`, `medsam2.preprocessing`'s
numpy parts) can be used by the web application without loading torch.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "build_model": "medsam2.build",
    "file_sha256": "medsam2.build",
    "save_checkpoint": "medsam2.build",
    "get_config": "medsam2.configs",
    "list_configs": "medsam2.configs",
    "register_config": "medsam2.configs",
    "FrameResult": "medsam2.predictor",
    "InferenceState": "medsam2.predictor",
    "VolumePredictor": "medsam2.predictor",
}

__all__ = [
    "FrameResult",
    "InferenceState",
    "VolumePredictor",
    "build_model",
    "file_sha256",
    "get_config",
    "list_configs",
    "register_config",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from medsam2.build import build_model, file_sha256, save_checkpoint
    from medsam2.configs import get_config, list_configs, register_config
    from medsam2.predictor import FrameResult, InferenceState, VolumePredictor


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medsam2' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
