"""Hiera image trunk, FPN neck and the image encoder that combines them.

Tensor layout inside the trunk is channels-last ``(B, H, W, C)``; the trunk returns channels-first
``(B, C, H, W)`` maps, one per stage, highest resolution first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medsam2.modeling.common import MLP, PositionEmbeddingSine, attention


def _to_windows(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Split ``(B, H, W, C)`` into ``(B * nWin, size, size, C)`` windows, zero-padding bottom/right.

    Returns the windows and the padded ``(Hp, Wp)``.
    """
    b, h, w, c = x.shape
    ph, pw = -h % size, -w % size
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    x = x.view(b, hp // size, size, wp // size, size, c).transpose(2, 3)
    return x.reshape(-1, size, size, c), (hp, wp)


def _from_windows(win: torch.Tensor, size: int, padded: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`_to_windows`, cropping the padding: -> ``(B, H, W, C)``."""
    hp, wp = padded
    nh, nw = hp // size, wp // size
    b = win.shape[0] // (nh * nw)
    x = win.reshape(b, nh, nw, size, size, -1).transpose(2, 3).reshape(b, hp, wp, -1)
    h, w = hw
    if hp > h or wp > w:
        x = x[:, :h, :w, :]
    return x


def _maxpool_nhwc(x: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """2D max-pool (kernel == stride) of a channels-last tensor."""
    return F.max_pool2d(x.permute(0, 3, 1, 2), kernel_size=stride, stride=stride).permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution: ``(B, 3, H, W)`` -> ``(B, H/4, W/4, C)`` channels-last."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Self-attention with optional max-pooling of the queries (which downsamples the output)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_stride: tuple[int, int] | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_stride = q_stride
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C)`` -> ``(B, H', W', C_out)`` where H' = H / q_stride when pooling."""
        b, h, w, _ = x.shape
        q, k, v = self.qkv(x).view(b, h * w, 3, self.num_heads, -1).unbind(2)
        if self.q_stride is not None:
            q = _maxpool_nhwc(q.reshape(b, h, w, -1), self.q_stride)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block with windowed (``window_size > 0``) or global attention.

    The first block of a stage changes the width (``dim -> dim_out``) and halves the resolution by
    pooling queries and the projected shortcut.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        q_stride: tuple[int, int] | None = None,
        window_size: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_stride)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, num_layers=2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.q_stride is not None:
                shortcut = _maxpool_nhwc(shortcut, self.q_stride)

        win = self.window_size
        if win > 0:
            x, _ = _to_windows(x, win)
        x = self.attn(x)
        if win > 0:
            # Pooled queries shrink every window by the stride; the grid of windows is unchanged.
            if self.q_stride is not None:
                win = win // self.q_stride[0]
            h, w = shortcut.shape[1:3]
            x = _from_windows(x, win, (h + (-h % win), w + (-w % win)), (h, w))

        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    """Hierarchical ViT trunk (Hiera) as used by SAM2.

    ``forward(x)``: ``(B, 3, S, S)`` -> list of ``(B, C_i, S / 2**(i+2), S / 2**(i+2))`` per stage.
    """

    def __init__(
        self,
        embed_dim: int = 96,
        num_heads: int = 1,
        stages: Sequence[int] = (1, 2, 7, 2),
        global_att_blocks: Sequence[int] = (5, 7, 9),
        window_spec: Sequence[int] = (8, 4, 14, 7),
        window_pos_embed_bkg_spatial_size: Sequence[int] = (7, 7),
        q_pool: int = 3,
        q_stride: tuple[int, int] = (2, 2),
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
    ) -> None:
        super().__init__()
        if len(stages) != len(window_spec):
            raise ValueError("stages and window_spec must have the same length")
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        pool_blocks = {end + 1 for end in self.stage_ends[:-1][:q_pool]}
        self.patch_embed = PatchEmbed(embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))

        self.blocks = nn.ModuleList()
        dim, heads, stage = embed_dim, num_heads, 0
        for i in range(sum(stages)):
            # A stage-opening block still attends within the previous stage's windows (before pooling).
            window = 0 if i in global_att_blocks else window_spec[stage]
            dim_out = dim
            if i - 1 in self.stage_ends:
                dim_out = int(dim * dim_mul)
                heads = int(heads * head_mul)
                stage += 1
            self.blocks.append(
                MultiScaleBlock(
                    dim, dim_out, heads, q_stride=q_stride if i in pool_blocks else None, window_size=window
                )
            )
            dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]
        self._pos_cache: dict[tuple[int, int, str, torch.dtype], torch.Tensor] = {}

    def _pos_embed_for(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Background embedding resized (bicubic) to ``(h, w)`` plus the tiled window embedding.

        Cached in eval mode: it depends only on the parameters and the grid size.
        """
        key = (h, w, str(device), dtype)
        if not self.training and key in self._pos_cache:
            return self._pos_cache[key]
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        win = self.pos_embed_window
        pos = pos + win.tile(1, 1, h // win.shape[-2], w // win.shape[-1])
        pos = pos.permute(0, 2, 3, 1).to(dtype)
        if not self.training:
            self._pos_cache[key] = pos
        return pos

    def train(self, mode: bool = True) -> Hiera:
        self._pos_cache.clear()  # parameters may change while training
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._pos_cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self._pos_embed_for(x.shape[1], x.shape[2], x.device, x.dtype)
        outs = []
        ends = set(self.stage_ends)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in ends:
                outs.append(x.permute(0, 3, 1, 2))
        return outs


class FpnNeck(nn.Module):
    """Feature pyramid neck: 1x1 lateral convs to ``d_model`` plus top-down fusion on some levels.

    ``forward(xs)`` takes trunk maps (highest resolution first) and returns ``(features, pos)``, both
    lists in the same order, ``features[i]`` of shape ``(B, d_model, H_i, W_i)``.
    """

    def __init__(
        self,
        position_encoding: PositionEmbeddingSine,
        d_model: int,
        backbone_channel_list: Sequence[int],
        fpn_top_down_levels: Sequence[int] | None = None,
        fpn_interp_model: str = "nearest",
    ) -> None:
        super().__init__()
        self.position_encoding = position_encoding
        self.d_model = d_model
        self.backbone_channel_list = list(backbone_channel_list)
        # convs[0] is the lowest-resolution (widest) level, matching the official ordering.
        self.convs = nn.ModuleList()
        for ch in backbone_channel_list:
            lateral = nn.Sequential()
            lateral.add_module("conv", nn.Conv2d(ch, d_model, kernel_size=1))
            self.convs.append(lateral)
        levels = range(len(self.convs)) if fpn_top_down_levels is None else fpn_top_down_levels
        self.fpn_top_down_levels = set(levels)
        self.fpn_interp_model = fpn_interp_model

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = len(self.convs)
        if len(xs) != n:
            raise ValueError(f"expected {n} feature maps, got {len(xs)}")
        feats: list[torch.Tensor] = [xs[0]] * n
        prev: torch.Tensor | None = None
        for i in reversed(range(n)):
            conv = self.convs[n - 1 - i].get_submodule("conv")
            assert isinstance(conv, nn.Conv2d)
            lateral = _lateral_1x1(conv, xs[i])
            if prev is not None and i in self.fpn_top_down_levels:
                up = F.interpolate(
                    prev.float(),
                    scale_factor=2.0,
                    mode=self.fpn_interp_model,
                    align_corners=None if self.fpn_interp_model == "nearest" else False,
                )
                prev = lateral + up
            else:
                prev = lateral
            feats[i] = prev
        pos = [self.position_encoding(f).to(f.dtype) for f in feats]
        return feats, pos


def _lateral_1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv as a matrix product over channels-last pixels: ``(B, C, H, W) -> (B, d, H, W)``.

    The trunk's maps are channels-last views (``(B, H, W, C)`` permuted), which the convolution
    first reorders (tens of ms per frame at stride 4 on a CPU); the product reads them as they are.
    The result is a channels-last view of the same numbers.
    """
    w = conv.weight.reshape(conv.out_channels, conv.in_channels)
    return F.linear(x.permute(0, 2, 3, 1), w, conv.bias).permute(0, 3, 1, 2)


class ImageEncoder(nn.Module):
    """Trunk + neck; drops the ``scalp`` lowest-resolution levels.

    ``forward(img)`` with img ``(B, 3, S, S)`` returns ``(backbone_fpn, vision_pos_enc)``: lists of
    ``(B, d_model, S/4, S/4)``, ``(B, d_model, S/8, S/8)``, ``(B, d_model, S/16, S/16)`` (for scalp 1).
    """

    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        if trunk.channel_list != neck.backbone_channel_list:
            raise ValueError(
                f"trunk channels {trunk.channel_list} != neck channels {neck.backbone_channel_list}"
            )
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, img: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        feats, pos = self.neck(self.trunk(img))
        if self.scalp > 0:
            feats, pos = feats[: -self.scalp], pos[: -self.scalp]
        return feats, pos
