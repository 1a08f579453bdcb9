"""Shipped weights: the CPU-trained bootstrap checkpoint and its metadata.

Torch-free on purpose: the Django app asks for the path without importing the model stack.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BOOTSTRAP_CONFIG", "bootstrap_checkpoint_path", "bootstrap_metadata_path"]

BOOTSTRAP_CONFIG = "bootstrap_s"
_HERE = Path(__file__).resolve().parent


def bootstrap_checkpoint_path() -> Path:
    """``bootstrap_s.pt``: official ``{"model": state_dict}`` file for the ``bootstrap_s`` config."""
    return _HERE / f"{BOOTSTRAP_CONFIG}.pt"


def bootstrap_metadata_path() -> Path:
    """``bootstrap_s.json``: config, seed, train time and held-out metrics of that checkpoint."""
    return _HERE / f"{BOOTSTRAP_CONFIG}.json"
