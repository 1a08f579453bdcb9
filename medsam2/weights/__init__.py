"""Shipped weights: the CPU-trained bootstrap checkpoint and its metadata.

Torch-free on purpose: the Django app asks for the path without importing the model stack. Where the
file lies is the config registry's answer (medsam2.configs: the ``bootstrap_s`` config names it).
"""

from __future__ import annotations

from pathlib import Path

from medsam2.configs import pretrained_weights

__all__ = ["BOOTSTRAP_CONFIG", "bootstrap_checkpoint_path", "bootstrap_metadata_path"]

BOOTSTRAP_CONFIG = "bootstrap_s"


def bootstrap_checkpoint_path() -> Path:
    """``bootstrap_s.pt``: official ``{"model": state_dict}`` file for the ``bootstrap_s`` config."""
    return pretrained_weights(BOOTSTRAP_CONFIG)[0]


def bootstrap_metadata_path() -> Path:
    """``bootstrap_s.json``: config, seed, train time and held-out metrics of that checkpoint."""
    return bootstrap_checkpoint_path().with_suffix(".json")
