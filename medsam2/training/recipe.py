"""The settings of one fine-tuning run, as an application passes them (torch-free, so a web process can
check a request without loading the training stack).

Every field left at ``None`` takes the published recipe's value: the SAM2/MedSAM2 fine-tuning defaults of
:class:`~medsam2.training.optim.OptimConfig` (AdamW, encoder lr 3e-5, other lr 5e-5, weight decay 0.1,
layer decay 0.9, grad clip 0.1, cosine to 10%), :class:`~medsam2.training.loop.PromptConfig` and
:class:`~medsam2.training.losses.LossWeights`, on 8-frame clips of up to 3 objects. A run is ``steps``
clips long; its resumable checkpoint is written every ``checkpoint_every`` steps and the held-out cases
are scored every ``validate_every`` steps (0: at the end only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["FineTuneSettings", "SettingsError"]


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class FineTuneSettings:
    steps: int = 300
    num_frames: int = 8
    max_objects: int = 3
    seed: int = 0
    checkpoint_every: int = 50
    validate_every: int = 100
    ema_decay: float = 0.0
    # the optimiser: None = the recipe's value (OptimConfig)
    lr_encoder: float | None = None
    lr_other: float | None = None
    weight_decay: float | None = None
    layer_decay: float | None = None
    warmup_steps: int | None = None
    grad_clip: float | None = None

    #: (least, greatest) for each number
    LIMITS = {
        "steps": (1, 1_000_000), "num_frames": (1, 64), "max_objects": (1, 16), "seed": (0, 2**31 - 1),
        "checkpoint_every": (0, 1_000_000), "validate_every": (0, 1_000_000), "ema_decay": (0.0, 0.99999),
        "lr_encoder": (0.0, 1.0), "lr_other": (0.0, 1.0), "weight_decay": (0.0, 10.0), "layer_decay": (0.0, 1.0),
        "warmup_steps": (0, 1_000_000), "grad_clip": (0.0, 1000.0),
    }  # fmt: skip

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> FineTuneSettings:
        """Settings from a JSON object; SettingsError names each unknown key or bad value."""
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        problems = [f"unknown setting {name!r}" for name in sorted(set(values) - set(known))]
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known or value is None:
                continue
            integer = known[name].type in ("int", "int | None")
            if isinstance(value, bool) or not isinstance(value, int | float) or (integer and value != int(value)):
                problems.append(f"{name} must be {'an integer' if integer else 'a number'}")
                continue
            low, high = cls.LIMITS[name]
            if not low <= value <= high:
                problems.append(f"{name} must lie in [{low}, {high}]")
                continue
            clean[name] = int(value) if integer else float(value)
        if problems:
            raise SettingsError("; ".join(problems))
        return cls(**clean)

    def optim_overrides(self) -> dict[str, Any]:
        """The optimiser fields this run sets (the rest keep OptimConfig's defaults)."""
        names = ("lr_encoder", "lr_other", "weight_decay", "layer_decay", "warmup_steps", "grad_clip")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
