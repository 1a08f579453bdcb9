"""Small building blocks shared by the MedSAM2 modules.

Everything here is numerically equivalent to the upstream SAM2 building blocks so that official
checkpoints produce the same outputs; parameter and buffer names follow the official state dict.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# bytes of attention scores computed at once on the CPU low-precision path (query chunks)
_SCORE_BUDGET = 32 * 2**20


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` for ``(..., L, d)`` tensors: SDPA semantics, no mask.

    bf16/fp16 on a CPU: PyTorch's CPU flash-attention kernel runs low precision no faster than
    fp32 (37 ms for one 1024 x 7232 memory cross-attention either way on a 2-core Zen 5), while
    bf16 matrix products run 3-4x faster; there the attention is two matrix products around a
    softmax (12 ms), over query chunks that keep the score matrix small. Everything else (fp32,
    GPUs, dropout in training) goes to ``F.scaled_dot_product_attention``.
    """
    if q.device.type != "cpu" or q.dtype not in (torch.bfloat16, torch.float16) or dropout_p > 0:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    kt = k.transpose(-1, -2)
    q = q * q.shape[-1] ** -0.5
    rows = max(1, _SCORE_BUDGET // (q.element_size() * k.shape[-2] * max(1, q.shape[:-2].numel())))
    chunks = []
    for i in range(0, q.shape[-2], rows):
        # the CPU softmax kernel accumulates reduced-precision input in fp32 internally
        scores = torch.matmul(q[..., i:i + rows, :], kt)
        chunks.append(torch.matmul(torch.softmax(scores, dim=-1), v))
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=-2)


class MLP(nn.Module):
    """Stack of ``num_layers`` linear layers with an activation between them (not after the last).

    Parameters live in ``layers.{i}`` as in the official checkpoints.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out, strict=True))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a ``(B, C, H, W)`` tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def _sine_frequencies(num_feats: int, temperature: float, device: torch.device) -> torch.Tensor:
    """Denominators ``temperature ** (2 * floor(i / 2) / num_feats)`` for i in [0, num_feats)."""
    idx = torch.arange(num_feats, dtype=torch.float32, device=device)
    return temperature ** (2 * (idx // 2) / num_feats)


def _interleave_sin_cos(angles: torch.Tensor) -> torch.Tensor:
    """``(..., F)`` angles -> ``(..., F)`` with sin of even and cos of odd entries, interleaved."""
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """2D sine/cosine position encoding of a feature map (DETR style), cached per spatial size.

    ``forward(x)`` with x ``(B, C, H, W)`` returns ``(B, num_pos_feats, H, W)`` (y features first,
    then x features). It has no parameters.
    """

    def __init__(
        self,
        num_pos_feats: int,
        temperature: float = 10000,
        normalize: bool = True,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        if num_pos_feats % 2 != 0:
            raise ValueError("num_pos_feats must be even")
        if scale is not None and not normalize:
            raise ValueError("scale requires normalize=True")
        self.feats_per_axis = num_pos_feats // 2
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale
        # The encoding only depends on (H, W, device); recomputing it per frame is pure waste.
        self._cache: dict[tuple[int, int, str], torch.Tensor] = {}

    def encoding(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """``(num_pos_feats, H, W)`` float32 encoding (cached)."""
        key = (height, width, str(device))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)[:, None].expand(height, width)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)[None, :].expand(height, width)
        if self.normalize:
            eps = 1e-6
            y = y / (height + eps) * self.scale
            x = x / (width + eps) * self.scale
        freqs = _sine_frequencies(self.feats_per_axis, self.temperature, device)
        pos_y = _interleave_sin_cos(y[..., None] / freqs)
        pos_x = _interleave_sin_cos(x[..., None] / freqs)
        pos = torch.cat((pos_y, pos_x), dim=-1).permute(2, 0, 1).contiguous()
        self._cache[key] = pos
        return pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.encoding(x.shape[-2], x.shape[-1], x.device)
        return pos[None].expand(x.shape[0], -1, -1, -1)


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier position encoding of (x, y) coordinates normalised to [0, 1] (SAM prompts)."""

    positional_encoding_gaussian_matrix: torch.Tensor

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else scale
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` coords in [0, 1] (x, y) -> ``(..., 2 * num_pos_feats)``."""
        proj = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        proj = 2 * math.pi * proj
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Dense encoding of pixel centres of an ``(H, W)`` grid: ``(C, H, W)``."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        grid = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)
        return self._encode(grid).permute(2, 0, 1)

    def forward_with_coords(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """``(B, N, 2)`` pixel coords (x, y) in an image of ``(H, W)`` -> ``(B, N, C)``."""
        norm = torch.stack([coords[..., 0] / image_size[1], coords[..., 1] / image_size[0]], dim=-1)
        return self._encode(norm.float())


def sine_pe_1d(positions: torch.Tensor, dim: int, temperature: float = 10000) -> torch.Tensor:
    """1D sine encoding: ``(N,)`` positions -> ``(N, dim)`` as ``[sin(p / f), cos(p / f)]``."""
    freqs = _sine_frequencies(dim // 2, temperature, positions.device)
    angles = positions[:, None] / freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def axial_rope_angles(dim: int, width: int, height: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotation angles of 2D axial RoPE for a ``width x height`` grid in row-major order.

    Returns ``(H * W, dim // 2)`` float32: the first ``dim // 4`` columns rotate by the x index,
    the last ``dim // 4`` by the y index.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    idx = torch.arange(width * height, dtype=torch.float32)
    xs = idx % width
    ys = torch.div(idx, width, rounding_mode="floor")
    return torch.cat([torch.outer(xs, freqs), torch.outer(ys, freqs)], dim=-1)


def rope_phasors(angles: torch.Tensor) -> torch.Tensor:
    """Unit complex numbers ``exp(i * angles)`` (complex64, same shape as ``angles``)."""
    return torch.polar(torch.ones_like(angles), angles)


def as_complex_pairs(x: torch.Tensor) -> torch.Tensor:
    """View ``(..., D)`` real (made float32) as ``(..., D/2)`` complex, pairing channels (0,1), (2,3)..."""
    xf = x.float()
    if xf.stride(-1) != 1:
        xf = xf.contiguous()
    return torch.view_as_complex(xf.unflatten(-1, (-1, 2)))


def apply_rope(x: torch.Tensor, phasors: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of ``x`` ``(..., N, D)`` by complex ``phasors`` ``(N, D/2)``.

    Done as one complex multiplication (rather than a handful of real elementwise ops) because on a
    busy CPU every extra kernel launch costs a thread synchronisation.
    """
    return torch.view_as_real(as_complex_pairs(x) * phasors).flatten(-2).to(x.dtype)


def resize_bilinear(x: torch.Tensor, size: tuple[int, int], antialias: bool = False) -> torch.Tensor:
    """Bilinear resize (align_corners=False) of ``(B, C, H, W)``; antialias only matters downsampling."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)
