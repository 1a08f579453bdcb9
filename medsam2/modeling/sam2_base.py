"""SAM2 tracking model: SAM heads conditioned on a memory bank of past frames.

Conventions
-----------
* Images are ``(B, 3, S, S)`` ImageNet-normalised floats, ``S = image_size``.
* Point coordinates are model-input pixels (x, y) in ``[0, S)``; labels 1 pos, 0 neg, 2/3 box
  corners, -1 padding.
* All masks are **logits**; ``pred_masks`` are low-res ``(B, 1, S/4, S/4)``, ``pred_masks_high_res``
  are ``(B, 1, S, S)``.
* Feature maps inside use batch-first sequences ``(B, h*w, C)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.init import trunc_normal_

from medsam2.modeling.common import MLP, resize_bilinear, sine_pe_1d
from medsam2.modeling.hiera import ImageEncoder
from medsam2.modeling.memory import MemoryAttention, MemoryEncoder
from medsam2.modeling.sam_heads import MaskDecoder, PromptEncoder

NO_OBJ_SCORE = -1024.0


@dataclass
class ImageFeatures:
    """Backbone output for a batch of frames.

    vision: ``(B, C, S/16, S/16)`` top-level features; vision_pos: same shape position encoding;
    high_res: ``[(B, C/8, S/4, S/4), (B, C/4, S/8, S/8)]`` already projected by conv_s0/conv_s1.
    """

    vision: torch.Tensor
    vision_pos: torch.Tensor
    high_res: list[torch.Tensor]

    def select(self, idx: int) -> ImageFeatures:
        """Frame ``idx`` of the batch, keeping a batch axis of 1."""
        s = slice(idx, idx + 1)
        return ImageFeatures(self.vision[s], self.vision_pos[s], [h[s] for h in self.high_res])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ImageFeatures:
        return ImageFeatures(
            self.vision.to(device, dtype),
            self.vision_pos.to(device, dtype),
            [h.to(device, dtype) for h in self.high_res],
        )


@dataclass
class PointInputs:
    """Prompts of one frame: coords ``(B, N, 2)`` float (x, y) in model pixels, labels ``(B, N)`` int."""

    coords: torch.Tensor
    labels: torch.Tensor


@dataclass
class SamOutput:
    """Output of the SAM heads for one frame (all mask tensors are logits)."""

    multimasks: torch.Tensor  # (B, M, S/4, S/4)
    ious: torch.Tensor  # (B, M)
    low_res_masks: torch.Tensor  # (B, 1, S/4, S/4) best mask
    high_res_masks: torch.Tensor  # (B, 1, S, S)
    obj_ptr: torch.Tensor  # (B, C)
    object_score_logits: torch.Tensor  # (B, 1)
    best_iou: torch.Tensor  # (B,)


@dataclass
class TrackOutput:
    """Per-frame tracking result kept in the memory bank.

    maskmem_features ``(B, mem_dim, h, w)`` (stored bfloat16 like the official predictor) and
    maskmem_pos_enc ``(B, mem_dim, h, w)`` are None until the memory encoder has run.
    """

    pred_masks: torch.Tensor
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    ious: torch.Tensor
    maskmem_features: torch.Tensor | None = None
    maskmem_pos_enc: torch.Tensor | None = None
    pred_masks_high_res: torch.Tensor | None = None


class SAM2Base(nn.Module):
    """MedSAM2 / SAM2.1 model. Submodules are built elsewhere (``medsam2.build``) and passed in."""

    def __init__(
        self,
        image_encoder: ImageEncoder,
        memory_attention: MemoryAttention,
        memory_encoder: MemoryEncoder,
        sam_prompt_encoder: PromptEncoder,
        sam_mask_decoder: MaskDecoder,
        obj_ptr_proj: nn.Module,
        obj_ptr_tpos_proj: nn.Module,
        num_maskmem: int = 7,
        image_size: int = 512,
        backbone_stride: int = 16,
        sigmoid_scale_for_mem_enc: float = 20.0,
        sigmoid_bias_for_mem_enc: float = -10.0,
        binarize_mask_from_pts_for_mem_enc: bool = True,
        use_mask_input_as_output_without_sam: bool = True,
        max_cond_frames_in_attn: int = -1,
        directly_add_no_mem_embed: bool = True,
        multimask_output_in_sam: bool = True,
        multimask_min_pt_num: int = 0,
        multimask_max_pt_num: int = 1,
        multimask_output_for_tracking: bool = True,
        max_obj_ptrs_in_encoder: int = 16,
        proj_tpos_enc_in_obj_ptrs: bool = True,
        use_signed_tpos_enc_to_obj_ptrs: bool = True,
        only_obj_ptrs_in_the_past_for_eval: bool = True,
        fixed_no_obj_ptr: bool = True,
        no_obj_embed_spatial: bool = True,
        box_mask_prompt: bool = False,
        track_mask_prompt: bool = False,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.memory_attention = memory_attention
        self.memory_encoder = memory_encoder
        self.sam_prompt_encoder = sam_prompt_encoder
        self.sam_mask_decoder = sam_mask_decoder
        self.obj_ptr_proj = obj_ptr_proj
        self.obj_ptr_tpos_proj = obj_ptr_tpos_proj
        # Turns a full-resolution input mask into a SAM mask prompt (S -> S/4) for the object pointer.
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)

        self.hidden_dim = image_encoder.neck.d_model
        self.mem_dim = memory_encoder.out_dim
        self.num_maskmem = num_maskmem
        self.image_size = image_size
        self.backbone_stride = backbone_stride
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(num_maskmem, 1, 1, self.mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, self.hidden_dim))
        self.no_obj_embed_spatial = (
            nn.Parameter(torch.zeros(1, self.mem_dim)) if no_obj_embed_spatial else None
        )
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr):
            trunc_normal_(p, std=0.02)
        if self.no_obj_embed_spatial is not None:
            trunc_normal_(self.no_obj_embed_spatial, std=0.02)

        self.sigmoid_scale_for_mem_enc = sigmoid_scale_for_mem_enc
        self.sigmoid_bias_for_mem_enc = sigmoid_bias_for_mem_enc
        self.binarize_mask_from_pts_for_mem_enc = binarize_mask_from_pts_for_mem_enc
        self.use_mask_input_as_output_without_sam = use_mask_input_as_output_without_sam
        self.max_cond_frames_in_attn = max_cond_frames_in_attn
        self.directly_add_no_mem_embed = directly_add_no_mem_embed
        self.multimask_output_in_sam = multimask_output_in_sam
        self.multimask_min_pt_num = multimask_min_pt_num
        self.multimask_max_pt_num = multimask_max_pt_num
        self.multimask_output_for_tracking = multimask_output_for_tracking
        self.max_obj_ptrs_in_encoder = max_obj_ptrs_in_encoder
        self.proj_tpos_enc_in_obj_ptrs = proj_tpos_enc_in_obj_ptrs
        self.use_signed_tpos_enc_to_obj_ptrs = use_signed_tpos_enc_to_obj_ptrs
        self.only_obj_ptrs_in_the_past_for_eval = only_obj_ptrs_in_the_past_for_eval
        self.fixed_no_obj_ptr = fixed_no_obj_ptr
        # Not in SAM2: also give a box as a filled-rectangle mask prompt (see box_as_mask_prompt).
        self.box_mask_prompt = box_mask_prompt
        # Not in SAM2: a tracked frame also gets its predecessor's mask logits as a mask prompt.
        self.track_mask_prompt = track_mask_prompt

    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    @property
    def feat_size(self) -> int:
        return self.image_size // self.backbone_stride

    # ------------------------------------------------------------------ image features
    def encode_image(self, images: torch.Tensor, image_encoder: nn.Module | None = None) -> ImageFeatures:
        """``(B, 3, S, S)`` normalised images -> :class:`ImageFeatures`.

        ``image_encoder`` overrides ``self.image_encoder`` (a reduced-precision copy, for example).
        """
        encoder = image_encoder if image_encoder is not None else self.image_encoder
        fpn, pos = encoder(images)
        dec = self.sam_mask_decoder
        high = [dec.conv_s0(fpn[0]), dec.conv_s1(fpn[1])] if dec.use_high_res_features else []
        return ImageFeatures(vision=fpn[-1], vision_pos=pos[-1], high_res=high)

    # ------------------------------------------------------------------ SAM heads
    def box_as_mask_prompt(self, points: PointInputs) -> torch.Tensor | None:
        """The box of ``points`` (labels 2 and 3) as a ``(B, 1, S/4, S/4)`` mask prompt, +10 inside, -10 out.

        Only for configs with ``box_mask_prompt`` (the small from-scratch bootstrap): there the
        rectangle tells every image token whether it lies in the box, which random Fourier codes
        of two corners leave a freshly initialised decoder to discover slowly. Returns None
        unless every object of the batch has a box (its last corner pair counts).
        """
        labels, coords = points.labels, points.coords
        first, second = labels == 2, labels == 3
        if not bool((first.any(dim=1) & second.any(dim=1)).all()):
            return None
        order = torch.arange(1, labels.shape[1] + 1, device=labels.device)
        rows = torch.arange(labels.shape[0], device=labels.device)
        p0 = coords[rows, (first * order).argmax(dim=1)]  # (B, 2) x, y
        p1 = coords[rows, (second * order).argmax(dim=1)]
        h, w = self.sam_prompt_encoder.mask_input_size
        cy = (torch.arange(h, device=coords.device, dtype=coords.dtype) + 0.5) * (self.image_size / h)
        cx = (torch.arange(w, device=coords.device, dtype=coords.dtype) + 0.5) * (self.image_size / w)
        # inclusive pixel corners: a cell is inside when its centre falls in [x0, x1 + 1)
        in_y = (cy[None] >= p0[:, 1:2]) & (cy[None] < p1[:, 1:2] + 1)  # (B, h)
        in_x = (cx[None] >= p0[:, 0:1]) & (cx[None] < p1[:, 0:1] + 1)  # (B, w)
        inside = in_y[:, :, None] & in_x[:, None, :]
        return torch.where(inside, 10.0, -10.0).to(coords.dtype)[:, None]

    def forward_sam_heads(
        self,
        features: torch.Tensor,
        points: PointInputs | None = None,
        mask_inputs: torch.Tensor | None = None,
        high_res_features: list[torch.Tensor] | None = None,
        multimask_output: bool = False,
    ) -> SamOutput:
        """Prompt encoder + mask decoder on ``features`` ``(B, C, S/16, S/16)``.

        mask_inputs: ``(B, 1, H, W)`` logits/binary, resized to the prompt size if needed.
        """
        b = features.shape[0]
        dev = features.device
        if points is None:
            coords = torch.zeros(b, 1, 2, device=dev)
            labels = -torch.ones(b, 1, dtype=torch.int32, device=dev)
        else:
            coords, labels = points.coords, points.labels
        mask_prompt = None
        if mask_inputs is None and self.box_mask_prompt and points is not None:
            mask_inputs = self.box_as_mask_prompt(points)
        if mask_inputs is not None:
            target = self.sam_prompt_encoder.mask_input_size
            mask_prompt = mask_inputs
            if tuple(mask_inputs.shape[-2:]) != tuple(target):
                mask_prompt = resize_bilinear(mask_inputs.float(), target, antialias=True)
        sparse, dense = self.sam_prompt_encoder((coords, labels), None, mask_prompt)
        masks, ious, tokens, obj_logits = self.sam_mask_decoder(
            image_embeddings=features,
            image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            high_res_features=high_res_features,
        )
        present = obj_logits > 0
        masks = torch.where(present[:, None, None], masks, NO_OBJ_SCORE).float()
        high = resize_bilinear(masks, (self.image_size, self.image_size))
        token = tokens[:, 0]
        rows = torch.arange(b, device=dev)
        if multimask_output:
            best = ious.argmax(dim=-1)
            low_best = masks[rows, best].unsqueeze(1)
            high_best = high[rows, best].unsqueeze(1)
            if tokens.shape[1] > 1:
                token = tokens[rows, best]
        else:
            best = torch.zeros(b, dtype=torch.long, device=dev)
            low_best, high_best = masks, high
        obj_ptr = self.obj_ptr_proj(token)
        weight = present.float()
        if self.fixed_no_obj_ptr:
            obj_ptr = weight * obj_ptr
        obj_ptr = obj_ptr + (1 - weight) * self.no_obj_ptr
        return SamOutput(masks, ious, low_best, high_best, obj_ptr, obj_logits, ious[rows, best])

    def mask_as_output(
        self, features: torch.Tensor, high_res_features: list[torch.Tensor] | None, mask: torch.Tensor
    ) -> SamOutput:
        """Use a binary input mask ``(B, 1, S, S)`` directly as the prediction (logits +-10)."""
        scale, bias = 20.0, -10.0
        m = mask.float()
        high = m * scale + bias
        low = resize_bilinear(high, (high.shape[-2] // 4, high.shape[-1] // 4), antialias=True)
        ious = m.new_ones(m.shape[0], 1)
        ptr = self.forward_sam_heads(
            features, mask_inputs=self.mask_downsample(m), high_res_features=high_res_features
        )
        present = (m.flatten(1) > 0).any(dim=1, keepdim=True).float()
        obj_logits = scale * present + bias
        obj_ptr = ptr.obj_ptr
        if self.fixed_no_obj_ptr:
            obj_ptr = present * obj_ptr
        obj_ptr = obj_ptr + (1 - present) * self.no_obj_ptr
        return SamOutput(low, ious, low, high, obj_ptr, obj_logits, ious[:, 0])

    # ------------------------------------------------------------------ memory
    def _memory_slots(
        self,
        frame_idx: int,
        cond: dict[int, TrackOutput],
        non_cond: dict[int, TrackOutput],
        reverse: bool,
    ) -> tuple[list[tuple[int, TrackOutput]], dict[int, TrackOutput], dict[int, TrackOutput]]:
        """Memories to attend to, as (temporal slot, output); plus selected/unselected cond frames."""
        selected, unselected = select_closest_cond_frames(frame_idx, cond, self.max_cond_frames_in_attn)
        slots: list[tuple[int, TrackOutput]] = [(0, out) for out in selected.values()]
        # Slot t (1..num_maskmem-1) holds the frame (num_maskmem - t) steps back in tracking order.
        for t in range(1, self.num_maskmem):
            prev = frame_idx + (self.num_maskmem - t) * (1 if reverse else -1)
            out = non_cond.get(prev, unselected.get(prev))
            if out is not None:
                slots.append((t, out))
        return slots, selected, unselected

    def _object_pointers(
        self,
        frame_idx: int,
        selected: dict[int, TrackOutput],
        unselected: dict[int, TrackOutput],
        non_cond: dict[int, TrackOutput],
        num_frames: int,
        reverse: bool,
    ) -> tuple[list[int], list[torch.Tensor], int]:
        """Object pointers with their signed temporal offsets, and the max offset span."""
        max_ptrs = min(num_frames, self.max_obj_ptrs_in_encoder)
        if not self.training and self.only_obj_ptrs_in_the_past_for_eval:
            cond_src = {t: o for t, o in selected.items() if (t >= frame_idx if reverse else t <= frame_idx)}
        else:
            cond_src = selected
        sign = -1 if reverse else 1
        offsets: list[int] = []
        ptrs: list[torch.Tensor] = []
        for t, out in cond_src.items():
            offsets.append(
                (frame_idx - t) * sign if self.use_signed_tpos_enc_to_obj_ptrs else abs(frame_idx - t)
            )
            ptrs.append(out.obj_ptr)
        for step in range(1, max_ptrs):
            t = frame_idx + step if reverse else frame_idx - step
            if t < 0 or t >= num_frames:
                break
            found = non_cond.get(t, unselected.get(t))
            if found is not None:
                offsets.append(step)
                ptrs.append(found.obj_ptr)
        return offsets, ptrs, max_ptrs - 1

    def _spatial_memory(
        self, slots: list[tuple[int, TrackOutput]], frame_idx: int, device: torch.device
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Memory tokens ``(B, S*h*w, mem_dim)`` (float32) and their position encodings.

        Built with a few large ops instead of a handful per memory frame: on a busy CPU each op
        launch costs a thread synchronisation.
        """
        feats: list[torch.Tensor] = []
        pos_maps: list[torch.Tensor] = []
        for _, out in slots:
            if out.maskmem_features is None or out.maskmem_pos_enc is None:
                raise RuntimeError(f"memory of a frame used by frame {frame_idx} was never encoded")
            feats.append(out.maskmem_features.to(device).flatten(2))
            pos_maps.append(out.maskmem_pos_enc.to(device).flatten(2))
        if not feats:
            return [], []
        b, c, hw = feats[0].shape
        mem = torch.cat(feats, dim=2) if len(feats) > 1 else feats[0]
        mem = mem.float().transpose(1, 2).contiguous()  # stored bf16 -> float32, like the reference
        tidx = torch.tensor([self.num_maskmem - t - 1 for t, _ in slots], device=device)
        tpos = self.maskmem_tpos_enc.index_select(0, tidx).reshape(1, len(slots), 1, c)
        first = pos_maps[0]
        if all(p.data_ptr() == first.data_ptr() and p.shape == first.shape for p in pos_maps):
            # The sine encoding is the same tensor for every memory frame: add all slot offsets at once.
            pos = (first.transpose(1, 2).unsqueeze(1) + tpos).reshape(b, len(slots) * hw, c)
        else:
            stacked = torch.stack([p.transpose(1, 2) for p in pos_maps], dim=1)
            pos = (stacked + tpos).reshape(b, len(slots) * hw, c)
        return [mem], [pos]

    def memory_conditioned_features(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        feats: ImageFeatures,
        cond: dict[int, TrackOutput],
        non_cond: dict[int, TrackOutput],
        num_frames: int,
        reverse: bool = False,
    ) -> torch.Tensor:
        """Fuse the top-level features with the memory bank -> ``(B, C, h, w)``."""
        vis = feats.vision
        b, c, h, w = vis.shape
        curr = vis.flatten(2).transpose(1, 2)  # (B, hw, C)
        if self.num_maskmem == 0:
            return vis
        if is_init_cond_frame:
            if self.directly_add_no_mem_embed:
                return (curr + self.no_mem_embed).transpose(1, 2).reshape(b, c, h, w)
            memory = self.no_mem_embed.expand(b, 1, self.mem_dim)
            memory_pos = self.no_mem_pos_enc.expand(b, 1, self.mem_dim)
            n_ptr_tokens = 0
        else:
            if not cond:
                raise RuntimeError("tracking a frame needs at least one conditioning frame")
            slots, selected, unselected = self._memory_slots(frame_idx, cond, non_cond, reverse)
            mems, poss = self._spatial_memory(slots, frame_idx, vis.device)
            offsets, ptrs, span = self._object_pointers(
                frame_idx, selected, unselected, non_cond, num_frames, reverse
            )
            n_ptr_tokens = 0
            if ptrs:
                obj_ptrs = torch.stack(ptrs, dim=1)  # (B, P, C)
                tdim = c if self.proj_tpos_enc_in_obj_ptrs else self.mem_dim
                rel = torch.tensor(offsets, dtype=torch.float32, device=vis.device) / span
                obj_pos = self.obj_ptr_tpos_proj(sine_pe_1d(rel, tdim))  # (P, mem_dim)
                obj_pos = obj_pos.unsqueeze(0).expand(b, -1, -1)
                if self.mem_dim < c:
                    # Each C-wide pointer becomes C / mem_dim consecutive mem_dim-wide tokens.
                    split = c // self.mem_dim
                    obj_ptrs = obj_ptrs.reshape(b, -1, self.mem_dim)
                    obj_pos = obj_pos.repeat_interleave(split, dim=1)
                mems.append(obj_ptrs)
                poss.append(obj_pos)
                n_ptr_tokens = obj_ptrs.shape[1]
            memory = torch.cat(mems, dim=1) if len(mems) > 1 else mems[0]
            memory_pos = torch.cat(poss, dim=1) if len(poss) > 1 else poss[0]
        curr_pos = feats.vision_pos.flatten(2).transpose(1, 2)
        fused = self.memory_attention(curr, curr_pos, memory, memory_pos, n_ptr_tokens)
        return fused.transpose(1, 2).reshape(b, c, h, w)

    def encode_memory(
        self,
        feats: ImageFeatures,
        high_res_masks: torch.Tensor,
        object_score_logits: torch.Tensor,
        is_mask_from_pts: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory of a frame from its raw features and predicted high-res mask logits ``(B, 1, S, S)``.

        Returns features ``(B, mem_dim, h, w)`` and position encoding of the same shape.
        """
        if self.binarize_mask_from_pts_for_mem_enc and is_mask_from_pts and not self.training:
            mask = (high_res_masks > 0).float()
        else:
            mask = torch.sigmoid(high_res_masks)
        mask = mask * self.sigmoid_scale_for_mem_enc + self.sigmoid_bias_for_mem_enc
        mem, pos = self.memory_encoder(feats.vision, mask)
        if self.no_obj_embed_spatial is not None:
            absent = 1 - (object_score_logits > 0).float()  # (B, 1)
            mem = mem + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None]
        return mem, pos

    def use_multimask(self, is_init_cond_frame: bool, points: PointInputs | None) -> bool:
        n = 0 if points is None else points.labels.shape[1]
        return (
            self.multimask_output_in_sam
            and (is_init_cond_frame or self.multimask_output_for_tracking)
            and self.multimask_min_pt_num <= n <= self.multimask_max_pt_num
        )

    def previous_mask_prompt(
        self, frame_idx: int, cond: dict[int, TrackOutput], non_cond: dict[int, TrackOutput], reverse: bool
    ) -> torch.Tensor | None:
        """With ``track_mask_prompt``: the low-res logits ``(B, 1, S/4, S/4)`` of the frame tracked just
        before ``frame_idx`` (``frame_idx + 1`` when ``reverse``), clamped to +-32, else None.

        Only for configs with ``track_mask_prompt`` (the small from-scratch bootstrap): its memory
        attention learns too slowly to say which object to follow, and the previous mask says it
        directly; "absent" logits (-1024) become a firm "nothing here".
        """
        if not self.track_mask_prompt:
            return None
        prev_idx = frame_idx + 1 if reverse else frame_idx - 1
        prev = non_cond.get(prev_idx) or cond.get(prev_idx)
        if prev is None:
            return None
        return prev.pred_masks.to(self.device).float().clamp(-32.0, 32.0)

    def track_step(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        feats: ImageFeatures,
        points: PointInputs | None,
        mask_inputs: torch.Tensor | None,
        cond: dict[int, TrackOutput],
        non_cond: dict[int, TrackOutput],
        num_frames: int,
        reverse: bool = False,
        run_mem_encoder: bool = True,
        prev_sam_mask_logits: torch.Tensor | None = None,
    ) -> TrackOutput:
        """Predict the mask on one frame from its prompts and/or the memory bank."""
        if mask_inputs is not None and self.use_mask_input_as_output_without_sam:
            sam = self.mask_as_output(feats.vision, feats.high_res, mask_inputs)
        else:
            pix = self.memory_conditioned_features(
                frame_idx, is_init_cond_frame, feats, cond, non_cond, num_frames, reverse
            )
            if prev_sam_mask_logits is None and points is None and not is_init_cond_frame:
                prev_sam_mask_logits = self.previous_mask_prompt(frame_idx, cond, non_cond, reverse)
            if prev_sam_mask_logits is not None:
                mask_inputs = prev_sam_mask_logits
            sam = self.forward_sam_heads(
                pix, points, mask_inputs, feats.high_res, self.use_multimask(is_init_cond_frame, points)
            )
        out = TrackOutput(
            pred_masks=sam.low_res_masks,
            obj_ptr=sam.obj_ptr,
            object_score_logits=sam.object_score_logits,
            ious=sam.best_iou,
            pred_masks_high_res=sam.high_res_masks,
        )
        if run_mem_encoder and self.num_maskmem > 0:
            out.maskmem_features, out.maskmem_pos_enc = self.encode_memory(
                feats, sam.high_res_masks, sam.object_score_logits, points is not None
            )
        return out

    def forward(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("use medsam2.VolumePredictor for inference")


def select_closest_cond_frames(
    frame_idx: int, cond: dict[int, TrackOutput], max_num: int
) -> tuple[dict[int, TrackOutput], dict[int, TrackOutput]]:
    """Up to ``max_num`` conditioning frames nearest to ``frame_idx`` (always the nearest before and
    after); ``-1`` keeps all. Returns (selected, unselected)."""
    if max_num == -1 or len(cond) <= max_num:
        return cond, {}
    if max_num < 2:
        raise ValueError("max_cond_frames_in_attn must be -1 or >= 2")
    chosen: dict[int, TrackOutput] = {}
    before = max((t for t in cond if t < frame_idx), default=None)
    after = min((t for t in cond if t >= frame_idx), default=None)
    for t in (before, after):
        if t is not None:
            chosen[t] = cond[t]
    rest = sorted((t for t in cond if t not in chosen), key=lambda t: abs(t - frame_idx))
    for t in rest[: max_num - len(chosen)]:
        chosen[t] = cond[t]
    return chosen, {t: v for t, v in cond.items() if t not in chosen}


def build_obj_ptr_proj(hidden_dim: int, use_mlp: bool = True) -> nn.Module:
    """Projection of SAM output tokens into object pointers (3-layer MLP in SAM2.1)."""
    return MLP(hidden_dim, hidden_dim, hidden_dim, 3) if use_mlp else nn.Linear(hidden_dim, hidden_dim)
