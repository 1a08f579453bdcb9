"""Typed model configurations, registered by name.

``medsam2_t512`` is MedSAM2 (SAM2.1 Hiera-Tiny at 512 px), the default. ``sam2.1_t1024`` is the
upstream SAM2.1 Tiny. ``test_tiny`` runs a frame in milliseconds for unit tests and ``bootstrap_s``
is a small model that can be trained from scratch on a CPU.

Like timm's pretrained configs, a config knows its weights and its preprocessing: ``weights`` names
the checkpoint shipped for it (a file in ``medsam2/weights/``) and ``image_size`` the model input
(intensities: :mod:`medsam2.window`). :func:`pretrained_weights` is the one lookup the CLI, the worker
and the training code use; :data:`PRETRAINED_DEFAULT` is the model a fresh installation runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "DEFAULT_CONFIG",
    "PRETRAINED_DEFAULT",
    "WEIGHTS_DIR",
    "ModelConfig",
    "TrunkConfig",
    "get_config",
    "list_configs",
    "pretrained_weights",
    "register_config",
]

DEFAULT_CONFIG = "medsam2_t512"
#: the config whose shipped weights run when nobody chose a checkpoint (CLI, worker, training)
PRETRAINED_DEFAULT = "bootstrap_s"
#: where shipped weights lie (installed with the package)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class TrunkConfig:
    """Hiera trunk. ``window_spec`` is one window size per stage; ``global_att_blocks`` are block indices."""

    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (1, 2, 7, 2)
    global_att_blocks: tuple[int, ...] = (5, 7, 9)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)

    @property
    def channel_list(self) -> list[int]:
        """Output width per stage, lowest resolution first (the FPN neck's order)."""
        return [self.embed_dim * 2**i for i in reversed(range(len(self.stages)))]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a :class:`medsam2.modeling.SAM2Base`."""

    name: str
    image_size: int = 512
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    d_model: int = 256
    fpn_top_down_levels: tuple[int, ...] = (2, 3)
    # memory
    mem_dim: int = 64
    num_maskmem: int = 7
    memory_layers: int = 4
    memory_heads: int = 1
    memory_ffn_dim: int = 2048
    memory_dropout: float = 0.1
    fuser_layers: int = 2
    # SAM heads
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    iou_head_hidden_dim: int = 256
    prompt_mask_in_chans: int = 16
    # behaviour (SAM2.1 + the official video-predictor post-processing defaults)
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = True
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
    max_obj_ptrs_in_encoder: int = 16
    max_cond_frames_in_attn: int = -1
    # not SAM2: a box prompt is also given as a filled-rectangle mask prompt (from-scratch configs)
    box_mask_prompt: bool = False
    # not SAM2: a tracked frame also gets the previous frame's mask logits as a mask prompt
    track_mask_prompt: bool = False
    # the weights shipped for this config: a file name in medsam2/weights/ (or an absolute path); ""
    # when none ships (MedSAM2's own file is fetched with ``medsam2 download`` and passed explicitly)
    weights: str = ""
    # where the official weights of this config are published: "<hub repo id>/<file>" on the Hugging
    # Face Hub (fetched by ``medsam2 download``); "" when there are none
    hub_weights: str = ""

    @property
    def weights_path(self) -> Path | None:
        """The file of this config's shipped weights (which may not be built yet), or None."""
        if not self.weights:
            return None
        path = Path(self.weights)
        return path if path.is_absolute() else WEIGHTS_DIR / path

    def __post_init__(self) -> None:
        t = self.trunk
        if self.image_size % 32 != 0:
            raise ValueError(f"{self.name}: image_size must be a multiple of 32")
        if len(t.window_spec) != len(t.stages):
            raise ValueError(f"{self.name}: one window size per stage is needed")
        grid = self.image_size // 4
        if grid % t.window_spec[0] != 0:
            raise ValueError(f"{self.name}: first window must divide the patch grid ({grid})")
        if self.d_model % self.mem_dim != 0:
            raise ValueError(f"{self.name}: mem_dim must divide d_model")

    def with_overrides(self, **changes: object) -> ModelConfig:
        """A copy with some fields changed (e.g. ``image_size``)."""
        return replace(self, **changes)  # type: ignore[arg-type]


_REGISTRY: dict[str, ModelConfig] = {}


def register_config(cfg: ModelConfig, *, overwrite: bool = False) -> ModelConfig:
    """Register ``cfg`` under ``cfg.name``; refuses to replace an existing name unless ``overwrite``."""
    if cfg.name in _REGISTRY and not overwrite:
        raise ValueError(f"config {cfg.name!r} is already registered")
    _REGISTRY[cfg.name] = cfg
    return cfg


def get_config(name: str | ModelConfig = DEFAULT_CONFIG) -> ModelConfig:
    """Look a config up by name (a :class:`ModelConfig` is returned unchanged)."""
    if isinstance(name, ModelConfig):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model config {name!r}; known: {', '.join(list_configs())}") from None


def pretrained_weights(name: str | ModelConfig = PRETRAINED_DEFAULT) -> tuple[Path, ModelConfig]:
    """(weights file, config) of a registered config's shipped weights; ``LookupError`` when the config
    ships none. The file may be missing (a bootstrap model not built yet): callers say what to do."""
    cfg = get_config(name)
    path = cfg.weights_path
    if path is None:
        fetch = f" (fetch {cfg.hub_weights} with `medsam2 download`)" if cfg.hub_weights else ""
        raise LookupError(f"model config {cfg.name!r} ships no weights; pass a checkpoint file{fetch}")
    return path, cfg


def list_configs() -> list[str]:
    """Names of all registered configs, sorted."""
    return sorted(_REGISTRY)


register_config(ModelConfig(name="medsam2_t512", image_size=512, hub_weights="wanglab/MedSAM2/MedSAM2_latest.pt"))
register_config(ModelConfig(name="sam2.1_t1024", image_size=1024))
register_config(
    ModelConfig(
        name="test_tiny",
        image_size=64,
        trunk=TrunkConfig(
            embed_dim=8,
            num_heads=1,
            stages=(1, 1, 2, 1),
            global_att_blocks=(3,),
            window_spec=(4, 4, 2, 2),
            window_pos_embed_bkg_spatial_size=(4, 4),
        ),
        d_model=32,
        mem_dim=16,
        memory_layers=1,
        memory_ffn_dim=64,
        fuser_layers=1,
        decoder_heads=2,
        decoder_mlp_dim=64,
        iou_head_hidden_dim=32,
        prompt_mask_in_chans=8,
        max_obj_ptrs_in_encoder=8,
    )
)
register_config(
    ModelConfig(
        name="bootstrap_s",
        image_size=128,
        trunk=TrunkConfig(
            embed_dim=24,
            num_heads=1,
            stages=(1, 1, 2, 1),
            global_att_blocks=(3,),
            window_spec=(8, 4, 8, 4),
            window_pos_embed_bkg_spatial_size=(4, 4),
        ),
        d_model=64,
        mem_dim=16,
        memory_layers=2,
        memory_ffn_dim=256,
        fuser_layers=1,
        decoder_heads=4,
        decoder_mlp_dim=256,
        iou_head_hidden_dim=64,
        # trained from scratch in minutes: the box and the previous frame's mask also enter as
        # dense prompts (a freshly initialised decoder learns them far faster than corner codes
        # and memory attention)
        box_mask_prompt=True,
        track_mask_prompt=True,
        weights="bootstrap_s.pt",  # trained by `python -m medsam2.training bootstrap`
    )
)
