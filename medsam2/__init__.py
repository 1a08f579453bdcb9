"""MedSAM2 in pure PyTorch: model, checkpoints and an interactive volume/video predictor."""

from medsam2.build import build_model, file_sha256, save_checkpoint
from medsam2.configs import get_config, list_configs, register_config
from medsam2.predictor import FrameResult, InferenceState, VolumePredictor

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
