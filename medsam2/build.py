"""Build a MedSAM2 model from a config, load/save checkpoints in the official format.

The checkpoint format is the official one: ``{"model": state_dict, ...}`` with SAM2.1 parameter names,
so files written here load into the reference implementation and vice versa.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medsam2.checkpoints import CheckpointError, checkpoint_filter_fn
from medsam2.configs import ModelConfig, get_config
from medsam2.modeling import (
    CXBlock,
    FpnNeck,
    Fuser,
    Hiera,
    ImageEncoder,
    MaskDecoder,
    MaskDownSampler,
    MemoryAttention,
    MemoryAttentionLayer,
    MemoryEncoder,
    PositionEmbeddingSine,
    PromptEncoder,
    RoPEAttention,
    SAM2Base,
    TwoWayTransformer,
    build_obj_ptr_proj,
)

__all__ = ["CheckpointError", "build_model", "build_sam2", "file_sha256", "load_weights", "save_checkpoint"]


def build_sam2(cfg: ModelConfig) -> SAM2Base:
    """Instantiate the (randomly initialised) model described by ``cfg``."""
    t = cfg.trunk
    d = cfg.d_model
    trunk = Hiera(
        embed_dim=t.embed_dim,
        num_heads=t.num_heads,
        stages=t.stages,
        global_att_blocks=t.global_att_blocks,
        window_spec=t.window_spec,
        window_pos_embed_bkg_spatial_size=t.window_pos_embed_bkg_spatial_size,
    )
    neck = FpnNeck(
        PositionEmbeddingSine(d),
        d_model=d,
        backbone_channel_list=t.channel_list,
        fpn_top_down_levels=cfg.fpn_top_down_levels,
        fpn_interp_model="nearest",
    )
    image_encoder = ImageEncoder(trunk, neck, scalp=1)

    def rope(kv_in_dim: int | None, repeat: bool) -> RoPEAttention:
        return RoPEAttention(
            d, cfg.memory_heads, dropout=cfg.memory_dropout, kv_in_dim=kv_in_dim, rope_k_repeat=repeat
        )

    layers = [
        MemoryAttentionLayer(
            self_attention=rope(None, False),
            cross_attention=rope(cfg.mem_dim, True),
            d_model=d,
            dim_feedforward=cfg.memory_ffn_dim,
            dropout=cfg.memory_dropout,
        )
        for _ in range(cfg.memory_layers)
    ]
    memory_attention = MemoryAttention(layers, d_model=d, pos_enc_at_input=True)
    memory_encoder = MemoryEncoder(
        out_dim=cfg.mem_dim,
        mask_downsampler=MaskDownSampler(embed_dim=d, kernel_size=3, stride=2, padding=1),
        fuser=Fuser([CXBlock(d) for _ in range(cfg.fuser_layers)]),
        position_encoding=PositionEmbeddingSine(cfg.mem_dim),
        in_dim=d,
    )
    feat = cfg.image_size // 16
    prompt_encoder = PromptEncoder(
        embed_dim=d,
        image_embedding_size=(feat, feat),
        input_image_size=(cfg.image_size, cfg.image_size),
        mask_in_chans=cfg.prompt_mask_in_chans,
    )
    mask_decoder = MaskDecoder(
        transformer_dim=d,
        transformer=TwoWayTransformer(cfg.decoder_depth, d, cfg.decoder_heads, cfg.decoder_mlp_dim),
        iou_head_hidden_dim=cfg.iou_head_hidden_dim,
        use_high_res_features=True,
        iou_prediction_use_sigmoid=True,
        dynamic_multimask_via_stability=cfg.dynamic_multimask_via_stability,
        dynamic_multimask_stability_delta=cfg.dynamic_multimask_stability_delta,
        dynamic_multimask_stability_thresh=cfg.dynamic_multimask_stability_thresh,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        use_multimask_token_for_obj_ptr=True,
    )
    model = SAM2Base(
        image_encoder=image_encoder,
        memory_attention=memory_attention,
        memory_encoder=memory_encoder,
        sam_prompt_encoder=prompt_encoder,
        sam_mask_decoder=mask_decoder,
        obj_ptr_proj=build_obj_ptr_proj(d, use_mlp=True),
        obj_ptr_tpos_proj=nn.Linear(d, cfg.mem_dim),
        num_maskmem=cfg.num_maskmem,
        image_size=cfg.image_size,
        sigmoid_scale_for_mem_enc=cfg.sigmoid_scale_for_mem_enc,
        sigmoid_bias_for_mem_enc=cfg.sigmoid_bias_for_mem_enc,
        binarize_mask_from_pts_for_mem_enc=cfg.binarize_mask_from_pts_for_mem_enc,
        max_cond_frames_in_attn=cfg.max_cond_frames_in_attn,
        max_obj_ptrs_in_encoder=cfg.max_obj_ptrs_in_encoder,
        box_mask_prompt=cfg.box_mask_prompt,
        track_mask_prompt=cfg.track_mask_prompt,
    )
    model.config = cfg  # type: ignore[assignment]
    return model


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Strictly load ``state_dict``; any missing, unexpected or mis-shaped key raises CheckpointError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or mismatched:
        raise CheckpointError(missing=missing, unexpected=unexpected, mismatched=mismatched)
    model.load_state_dict(state_dict, strict=True)


def build_model(
    cfg: ModelConfig | str = "medsam2_t512",
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
) -> SAM2Base:
    """Build ``cfg`` (a config or its registered name), load ``checkpoint`` strictly, move to
    ``device`` and switch to eval mode."""
    config = get_config(cfg)
    model = build_sam2(config)
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        raw = torch.load(path, map_location="cpu", weights_only=True)
        load_weights(model, checkpoint_filter_fn(raw))
    return model.to(device).eval()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> str:
    """Write ``{"model": state_dict, **extra}`` atomically and return its SHA-256.

    ``extra`` must hold only plain types (numbers, strings, lists, dicts, tensors) so that the
    file stays loadable with ``weights_only=True``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if extra:
        if "model" in extra:
            raise ValueError("extra must not contain the key 'model'")
        payload.update(extra)
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return file_sha256(target)
