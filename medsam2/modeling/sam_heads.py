"""SAM prompt encoder, two-way transformer and mask decoder.

Coordinates of points/boxes are in model-input pixels (x, y) of the ``S x S`` resized image.
Mask outputs are logits (apply sigmoid / threshold at 0 for a binary mask).
"""

from __future__ import annotations

import torch
from torch import nn

from medsam2.modeling.common import MLP, LayerNorm2d, PositionEmbeddingRandom, attention


class PromptEncoder(nn.Module):
    """Embeds points/boxes into sparse tokens and a mask into a dense map.

    Point labels: 1 positive, 0 negative, 2 box top-left, 3 box bottom-right, -1 padding.
    """

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._dense_pe: dict[str, torch.Tensor] = {}

    def get_dense_pe(self) -> torch.Tensor:
        """``(1, C, h, w)`` encoding of the image-embedding grid (cached in eval mode)."""
        key = str(self.pe_layer.positional_encoding_gaussian_matrix.device)
        if self.training or key not in self._dense_pe:
            pe = self.pe_layer(self.image_embedding_size).unsqueeze(0)
            if self.training:
                return pe
            self._dense_pe[key] = pe
        return self._dense_pe[key]

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._dense_pe.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def _point_weight(self, label: int) -> torch.Tensor:
        """``(1, C)`` learned embedding added to points of ``label`` (0..3)."""
        table = self.point_embeddings[label]
        assert isinstance(table, nn.Embedding)
        return table.weight

    def _embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        coords = coords + 0.5  # pixel centres
        if pad:
            coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        emb = self.pe_layer.forward_with_coords(coords, self.input_image_size)
        lab = labels.unsqueeze(-1)
        emb = torch.where(lab == -1, torch.zeros_like(emb) + self.not_a_point_embed.weight, emb)
        for value in range(len(self.point_embeddings)):
            emb = torch.where(lab == value, emb + self._point_weight(value), emb)
        return emb

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns sparse ``(B, N, C)`` and dense ``(B, C, h, w)`` embeddings.

        points: ``(B, N, 2)`` coords (x, y) and ``(B, N)`` labels; boxes: ``(B, 4)`` x0,y0,x1,y1;
        masks: ``(B, 1, 4h, 4w)`` mask logits or binary mask.
        """
        if points is not None:
            bs = points[0].shape[0]
        elif boxes is not None:
            bs = boxes.shape[0]
        elif masks is not None:
            bs = masks.shape[0]
        else:
            bs = 1
        device = self.no_mask_embed.weight.device
        parts = [torch.empty((bs, 0, self.embed_dim), device=device)]
        if points is not None:
            parts.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            corners = self.pe_layer.forward_with_coords(
                (boxes + 0.5).reshape(-1, 2, 2), self.input_image_size
            )
            corners = corners + torch.cat([self._point_weight(2), self._point_weight(3)], dim=0)
            parts.append(corners)
        sparse = torch.cat(parts, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(bs, -1, h, w)
        return sparse, dense


class Attention(nn.Module):
    """Multi-head attention whose internal width is ``embedding_dim // downsample_rate``.

    Keys/values may have a different input width ``kv_in_dim``.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.kv_in_dim = embedding_dim if kv_in_dim is None else kv_in_dim
        self.internal_dim = embedding_dim // downsample_rate
        if self.internal_dim % num_heads != 0:
            raise ValueError("num_heads must divide the internal dimension")
        self.num_heads = num_heads
        self.dropout_p = dropout
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` -> ``(B, heads, N, C / heads)``."""
        if self.num_heads == 1:
            return x.unsqueeze(1)  # a pure view: no copy for the single-head memory attention
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_heads == 1:
            return x.squeeze(1)
        return x.transpose(1, 2).flatten(2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q ``(B, Nq, C)``, k/v ``(B, Nk, C_kv)`` -> ``(B, Nq, C)``."""
        qh = self._heads(self.q_proj(q))
        kh = self._heads(self.k_proj(k))
        vh = self._heads(self.v_proj(v))
        p = self.dropout_p if self.training else 0.0
        out = attention(qh, kh, vh, dropout_p=p)
        return self.out_proj(self._merge(out))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image, MLP, image->token attention (post-norm)."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, num_layers=2, activation=nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        keys_pe = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(queries + query_pe, keys_pe, keys))
        queries = self.norm3(queries + self.mlp(queries))
        keys = self.norm4(keys + self.cross_attn_image_to_token(keys_pe, queries + query_pe, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks then a final token->image attention."""

    def __init__(
        self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int, attention_downsample_rate: int = 2
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0)
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image/image_pe ``(B, C, h, w)``, tokens ``(B, N, C)``.

        Returns tokens ``(B, N, C)`` and image tokens ``(B, h*w, C)``.
        """
        keys = image.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        attn = self.final_attn_token_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn), keys


class MaskDecoder(nn.Module):
    """Predicts mask logits, IoU scores, object-score logits and output tokens.

    ``forward`` returns masks ``(B, M, 4h, 4w)`` logits, ious ``(B, M)`` (sigmoid if configured),
    SAM output tokens ``(B, M', C)`` and object-score logits ``(B, 1)``; ``M`` is 3 with
    ``multimask_output`` else 1.
    """

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        use_high_res_features: bool = True,
        iou_prediction_use_sigmoid: bool = True,
        dynamic_multimask_via_stability: bool = True,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
        pred_obj_scores: bool = True,
        pred_obj_scores_mlp: bool = True,
        use_multimask_token_for_obj_ptr: bool = True,
    ) -> None:
        super().__init__()
        d = transformer_dim
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, d)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, d)
        self.pred_obj_scores = pred_obj_scores
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, d)
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(d, d // 4, kernel_size=2, stride=2),
            LayerNorm2d(d // 4),
            nn.GELU(),
            nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            self.conv_s0 = nn.Conv2d(d, d // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(d, d // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(d, d, d // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            d,
            iou_head_hidden_dim,
            self.num_mask_tokens,
            iou_head_depth,
            sigmoid_output=iou_prediction_use_sigmoid,
        )
        if pred_obj_scores:
            self.pred_obj_score_head: nn.Module = MLP(d, d, 1, 3) if pred_obj_scores_mlp else nn.Linear(d, 1)
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.stability_delta = dynamic_multimask_stability_delta
        self.stability_thresh = dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        masks, ious, mask_tokens, obj_logits = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, high_res_features
        )
        if multimask_output:
            masks, ious = masks[:, 1:], ious[:, 1:]
        elif self.dynamic_multimask_via_stability and not self.training:
            masks, ious = self._fallback_to_multimask_if_unstable(masks, ious)
        else:
            masks, ious = masks[:, 0:1], ious[:, 0:1]
        if multimask_output and self.use_multimask_token_for_obj_ptr:
            tokens = mask_tokens[:, 1:]
        else:
            tokens = mask_tokens[:, 0:1]
        return masks, ious, tokens, obj_logits

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        high_res_features: list[torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All ``num_mask_tokens`` masks (logits) before selection; image batch must equal token batch."""
        weights = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            weights.insert(0, self.obj_score_token.weight)
        first = 1 if self.pred_obj_scores else 0
        out_tokens = torch.cat(weights, dim=0).unsqueeze(0).expand(sparse.shape[0], -1, -1)
        tokens = torch.cat((out_tokens, sparse), dim=1)
        if image_embeddings.shape[0] != tokens.shape[0]:
            raise ValueError("image batch and prompt batch differ")
        src = image_embeddings + dense
        pos = image_pe.expand(tokens.shape[0], -1, -1, -1)
        b, c, h, w = src.shape
        hs, src_out = self.transformer(src, pos, tokens)
        iou_tok = hs[:, first]
        mask_toks = hs[:, first + 1 : first + 1 + self.num_mask_tokens]

        src_map = src_out.transpose(1, 2).reshape(b, c, h, w)
        if self.use_high_res_features:
            if high_res_features is None:
                raise ValueError("this decoder needs high-resolution features")
            dc1, ln1, act1, dc2, act2 = self.output_upscaling
            feat_s0, feat_s1 = high_res_features
            up = act1(ln1(dc1(src_map) + feat_s1))
            up = act2(dc2(up) + feat_s0)
        else:
            up = self.output_upscaling(src_map)
        hyper = torch.stack(
            [mlp(mask_toks[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        b, c, h, w = up.shape
        masks = (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)
        ious = self.iou_prediction_head(iou_tok)
        if self.pred_obj_scores:
            obj_logits = self.pred_obj_score_head(hs[:, 0])
        else:
            obj_logits = 10.0 * ious.new_ones(ious.shape[0], 1)
        return masks, ious, mask_toks, obj_logits

    def _fallback_to_multimask_if_unstable(
        self, masks: torch.Tensor, ious: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the single-mask output when stable, else the best of the 3 multimask outputs."""
        multi, multi_iou = masks[:, 1:], ious[:, 1:]
        best = multi_iou.argmax(dim=-1)
        rows = torch.arange(multi.shape[0], device=masks.device)
        best_mask = multi[rows, best].unsqueeze(1)
        best_iou = multi_iou[rows, best].unsqueeze(1)
        single, single_iou = masks[:, 0:1], ious[:, 0:1]
        flat = single.flatten(-2)
        inner = (flat > self.stability_delta).sum(-1).float()
        outer = (flat > -self.stability_delta).sum(-1).float()
        stability = torch.where(outer > 0, inner / outer, 1.0)
        stable = stability >= self.stability_thresh
        out_mask = torch.where(stable[..., None, None].expand_as(single), single, best_mask)
        out_iou = torch.where(stable.expand_as(single_iou), single_iou, best_iou)
        return out_mask, out_iou
