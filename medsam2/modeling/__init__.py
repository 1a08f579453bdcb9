"""MedSAM2 / SAM2.1 network modules (pure PyTorch; parameter names follow official checkpoints)."""

from medsam2.modeling.common import MLP, LayerNorm2d, PositionEmbeddingRandom, PositionEmbeddingSine
from medsam2.modeling.hiera import FpnNeck, Hiera, ImageEncoder, MultiScaleBlock
from medsam2.modeling.memory import (
    CXBlock,
    Fuser,
    MaskDownSampler,
    MemoryAttention,
    MemoryAttentionLayer,
    MemoryEncoder,
    RoPEAttention,
)
from medsam2.modeling.sam2_base import (
    NO_OBJ_SCORE,
    ImageFeatures,
    PointInputs,
    SAM2Base,
    SamOutput,
    TrackOutput,
    build_obj_ptr_proj,
    select_closest_cond_frames,
)
from medsam2.modeling.sam_heads import Attention, MaskDecoder, PromptEncoder, TwoWayTransformer

__all__ = [
    "MLP",
    "NO_OBJ_SCORE",
    "Attention",
    "CXBlock",
    "FpnNeck",
    "Fuser",
    "Hiera",
    "ImageEncoder",
    "ImageFeatures",
    "LayerNorm2d",
    "MaskDecoder",
    "MaskDownSampler",
    "MemoryAttention",
    "MemoryAttentionLayer",
    "MemoryEncoder",
    "MultiScaleBlock",
    "PointInputs",
    "PositionEmbeddingRandom",
    "PositionEmbeddingSine",
    "PromptEncoder",
    "RoPEAttention",
    "SAM2Base",
    "SamOutput",
    "TrackOutput",
    "TwoWayTransformer",
    "build_obj_ptr_proj",
    "select_closest_cond_frames",
]
