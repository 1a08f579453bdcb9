"""Memory attention (current frame attends to memories of past frames) and memory encoder.

Sequences here are batch-first ``(B, N, C)``. Memory tokens are ``num_frames * h * w`` spatial
tokens (frame after frame, each in row-major order) followed by object-pointer tokens, which get
no rotary encoding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from medsam2.modeling.common import (
    LayerNorm2d,
    PositionEmbeddingSine,
    apply_rope,
    as_complex_pairs,
    attention,
    axial_rope_angles,
    rope_phasors,
)
from medsam2.modeling.sam_heads import Attention


class RoPEAttention(Attention):
    """Attention with 2D axial rotary position encoding on queries and (spatial) keys.

    Queries form a square ``s x s`` grid; with ``rope_k_repeat`` the keys are several grids of the
    same size, each rotated like the queries.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
        rope_theta: float = 10000.0,
        rope_k_repeat: bool = False,
        feat_sizes: tuple[int, int] = (32, 32),
    ) -> None:
        super().__init__(embedding_dim, num_heads, downsample_rate, dropout, kv_in_dim)
        self.rope_theta = rope_theta
        self.rope_k_repeat = rope_k_repeat
        self.head_dim = self.internal_dim // num_heads
        self._rope: dict[tuple[int, str], torch.Tensor] = {}

    def _phasors(self, n: int, device: torch.device) -> torch.Tensor:
        """Complex rotations ``(n, head_dim / 2)`` for a square grid of ``n`` tokens (cached)."""
        key = (n, str(device))
        if key not in self._rope:
            side = int(math.isqrt(n))
            if side * side != n:
                raise ValueError(f"RoPE attention needs a square query grid, got {n} tokens")
            angles = axial_rope_angles(self.head_dim, side, side, self.rope_theta).to(device)
            self._rope[key] = rope_phasors(angles)
        return self._rope[key]

    def _cos_sin(self, n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts of :meth:`_phasors` in ``dtype`` (cached)."""
        key = (n, f"{device}:{dtype}")
        if key not in self._rope:
            ph = self._phasors(n, device)
            self._rope[key] = torch.stack([ph.real, ph.imag]).to(dtype)
        cs = self._rope[key]
        return cs[0], cs[1]

    def _rotate_keys(self, kh: torch.Tensor, phasors: torch.Tensor, n_rope: int) -> torch.Tensor:
        """Rotate the first ``n_rope`` keys of ``kh`` ``(B, heads, Nk, d)``: grid after grid."""
        n = phasors.shape[0]
        reps = n_rope // n
        if reps * n != n_rope or (reps > 1 and not self.rope_k_repeat):
            raise ValueError("rotary keys must be whole query-sized grids (rope_k_repeat)")
        lowp_inference = not torch.is_grad_enabled() and kh.dtype != torch.float32
        if n_rope == kh.shape[-2] and not lowp_inference:
            kc = as_complex_pairs(kh)
            rot = (kc.unflatten(2, (reps, n)) * phasors).flatten(2, 3)
            return torch.view_as_real(rot).flatten(-2).to(kh.dtype)
        if lowp_inference:
            # Reduced-precision inference (bf16 autocast): rotate in place in real arithmetic in
            # the keys' own dtype; the complex path would round-trip them through float32 copies.
            cos, sin = self._cos_sin(n, kh.dtype, kh.device)
            pairs = kh[:, :, :n_rope].unflatten(2, (reps, n)).unflatten(-1, (-1, 2))
            a, b = pairs[..., 0], pairs[..., 1]
            a_new = a * cos - b * sin
            b.mul_(cos).addcmul_(a, sin)
            a.copy_(a_new)
            return kh
        if not torch.is_grad_enabled() and kh.dtype == torch.float32:
            # Inference: rotate in place and leave the object-pointer keys as they are (no concat).
            kc = as_complex_pairs(kh)
            kc[:, :, :n_rope].unflatten(2, (reps, n)).mul_(phasors)
            return kh
        kc = as_complex_pairs(kh)
        rot = (kc[:, :, :n_rope].unflatten(2, (reps, n)) * phasors).flatten(2, 3)
        out = torch.view_as_real(torch.cat([rot, kc[:, :, n_rope:]], dim=2)).flatten(-2)
        return out.to(kh.dtype)

    def forward(  # type: ignore[override]
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0
    ) -> torch.Tensor:
        """q ``(B, Nq, C)``; k/v ``(B, Nk, C_kv)``; the last ``num_k_exclude_rope`` keys are not rotated."""
        qh = self._heads(self.q_proj(q))
        kh = self._heads(self.k_proj(k))
        phasors = self._phasors(qh.shape[-2], qh.device)
        if not torch.is_grad_enabled() and qh.dtype != torch.float32:
            qh = self._rotate_keys(qh, phasors, qh.shape[-2])  # same rotation, in place, one grid
        else:
            qh = apply_rope(qh, phasors)
        n_rope = kh.shape[-2] - num_k_exclude_rope
        if n_rope > 0:
            kh = self._rotate_keys(kh, phasors, n_rope)
        p = self.dropout_p if self.training else 0.0
        vh = self._heads(self.v_proj(v))
        out = attention(qh, kh, vh, dropout_p=p)
        return self.out_proj(self._merge(out))


class MemoryAttentionLayer(nn.Module):
    """Pre-norm layer: RoPE self-attention, RoPE cross-attention to memory, ReLU feed-forward."""

    def __init__(
        self,
        self_attention: RoPEAttention,
        cross_attention: RoPEAttention,
        d_model: int = 256,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        pos_enc_at_attn: bool = False,
        pos_enc_at_cross_attn_keys: bool = True,
        pos_enc_at_cross_attn_queries: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = self_attention
        self.cross_attn_image = cross_attention
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.pos_enc_at_attn = pos_enc_at_attn
        self.pos_enc_at_cross_attn_keys = pos_enc_at_cross_attn_keys
        self.pos_enc_at_cross_attn_queries = pos_enc_at_cross_attn_queries

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        num_k_exclude_rope: int = 0,
        memory_keys: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """tgt/query_pos ``(B, N, C)``, memory/pos ``(B, M, C_mem)``.

        ``memory_keys`` (``memory + pos``) may be passed precomputed: it is the same for every layer.
        """
        x = self.norm1(tgt)
        qk = x + query_pos if self.pos_enc_at_attn else x
        tgt = tgt + self.dropout1(self.self_attn(qk, qk, x))

        x = self.norm2(tgt)
        q = x + query_pos if self.pos_enc_at_cross_attn_queries else x
        if memory_keys is None:
            memory_keys = memory + pos if self.pos_enc_at_cross_attn_keys else memory
        tgt = tgt + self.dropout2(self.cross_attn_image(q, memory_keys, memory, num_k_exclude_rope))

        x = self.norm3(tgt)
        return tgt + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(x)))))


class MemoryAttention(nn.Module):
    """Stack of memory-attention layers plus a final LayerNorm."""

    def __init__(self, layers: list[MemoryAttentionLayer], d_model: int = 256, pos_enc_at_input: bool = True):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.d_model = d_model
        self.norm = nn.LayerNorm(d_model)
        self.pos_enc_at_input = pos_enc_at_input

    def forward(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        """curr/curr_pos ``(B, h*w, C)``; memory/memory_pos ``(B, M, C_mem)`` -> ``(B, h*w, C)``."""
        out = curr + 0.1 * curr_pos if self.pos_enc_at_input else curr
        keys = None
        if all(layer.pos_enc_at_cross_attn_keys for layer in self.layers):
            keys = memory + memory_pos
        for layer in self.layers:
            out = layer(out, memory, memory_pos, curr_pos, num_obj_ptr_tokens, memory_keys=keys)
        return self.norm(out)


class MaskDownSampler(nn.Module):
    """Strided convs (each followed by LayerNorm2d + GELU) down to ``1 / total_stride``, then 1x1."""

    def __init__(
        self,
        embed_dim: int = 256,
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 1,
        total_stride: int = 16,
    ) -> None:
        super().__init__()
        n = round(math.log(total_stride, stride))
        if stride**n != total_stride:
            raise ValueError("total_stride must be a power of stride")
        self.encoder = nn.Sequential()
        ch = 1
        for _ in range(n):
            out = ch * stride * stride
            self.encoder.append(nn.Conv2d(ch, out, kernel_size, stride, padding))
            self.encoder.append(LayerNorm2d(out))
            self.encoder.append(nn.GELU())
            ch = out
        self.encoder.append(nn.Conv2d(ch, embed_dim, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm, pointwise MLP (as Linear layers), layer scale."""

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        padding: int = 3,
        layer_scale_init_value: float = 1e-6,
        use_dwconv: bool = True,
    ) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=padding, groups=dim if use_dwconv else 1)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim)) if layer_scale_init_value > 0 else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """A stack of CXBlocks."""

    def __init__(self, layers: list[CXBlock]) -> None:
        super().__init__()
        self.proj = nn.Identity()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Fuses image features with a (sigmoid-scaled) mask into a memory of ``out_dim`` channels.

    ``forward(pix_feat (B, C, h, w), mask (B, 1, S, S))`` -> ``(features (B, out_dim, h, w),
    pos (B, out_dim, h, w))``. The mask is expected already passed through sigmoid/scale/bias.
    """

    def __init__(
        self,
        out_dim: int,
        mask_downsampler: MaskDownSampler,
        fuser: Fuser,
        position_encoding: PositionEmbeddingSine,
        in_dim: int = 256,
    ) -> None:
        super().__init__()
        self.mask_downsampler = mask_downsampler
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = fuser
        self.position_encoding = position_encoding
        self.out_proj: nn.Module = (
            nn.Conv2d(in_dim, out_dim, kernel_size=1) if out_dim != in_dim else nn.Identity()
        )
        self.out_dim = out_dim

    def forward(self, pix_feat: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.mask_downsampler(mask)
        x = self.fuser(self.pix_feat_proj(pix_feat) + m)
        x = self.out_proj(x)
        return x, self.position_encoding(x).to(x.dtype)
