"""Interactive volume/video predictor over in-memory arrays.

Usage::

    predictor = VolumePredictor(model)
    state = predictor.init_state(volume, modality="CT", window="abdomen")
    res = predictor.add_prompt(state, frame_idx=40, obj_id=1, box=(x0, y0, x1, y1))
    for res in predictor.propagate(state, direction="both"):
        ...

Coordinates given to :meth:`VolumePredictor.add_prompt` are (x, y) pixels of the ORIGINAL frames;
results come back at the original resolution. Every frame is encoded at most once per state: image
features are cached, so corrections and re-propagation only run the (cheap) tracking heads.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from medsam2.modeling.common import resize_bilinear
from medsam2.modeling.sam2_base import NO_OBJ_SCORE, ImageFeatures, PointInputs, SAM2Base, TrackOutput

__all__ = ["FrameResult", "InferenceState", "ObjectTrack", "VolumePredictor"]

Direction = Literal["both", "forward", "backward"]


@dataclass
class FrameResult:
    """Masks of all objects on one frame.

    masks: bool ``(N, H, W)`` at the input's original resolution, one per ``obj_ids`` entry;
    logits: float32 ``(N, H, W)`` mask logits (threshold 0); object_scores: ``(N,)`` object-presence
    logits; ious: ``(N,)`` predicted IoU (probability).
    """

    frame_idx: int
    obj_ids: list[int]
    masks: np.ndarray
    logits: np.ndarray
    object_scores: np.ndarray
    ious: np.ndarray


@dataclass
class ObjectTrack:
    """Prompts and per-frame outputs of one object.

    ``cond`` are conditioning (prompted) frames, ``non_cond`` tracked frames; ``pending`` holds
    prompted frames whose memory has not been encoded yet (done at the start of propagation).
    ``tracked`` maps a frame to the direction it was last tracked in (True = backward).
    """

    obj_id: int
    points: dict[int, PointInputs] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)
    cond: dict[int, TrackOutput] = field(default_factory=dict)
    non_cond: dict[int, TrackOutput] = field(default_factory=dict)
    pending: dict[int, TrackOutput] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)

    def output(self, frame_idx: int) -> TrackOutput | None:
        return self.pending.get(frame_idx) or self.cond.get(frame_idx) or self.non_cond.get(frame_idx)


@dataclass
class InferenceState:
    """Everything about one volume/video session; pass it to every predictor call.

    frames: uint8 ``(T, H, W)`` or ``(T, H, W, 3)`` display frames (the model input is derived from
    them lazily). ``features`` caches encoded frames; ``encode_count`` counts image-encoder frames.
    """

    frames: np.ndarray
    num_frames: int
    height: int
    width: int
    image_size: int
    objects: dict[int, ObjectTrack] = field(default_factory=dict)
    features: dict[int, ImageFeatures] = field(default_factory=dict)
    encode_count: int = 0

    @property
    def obj_ids(self) -> list[int]:
        return list(self.objects)


class VolumePredictor:
    """Prompting and mask propagation for a :class:`SAM2Base` model.

    Args:
        model: the network (put in eval mode here).
        device: "cpu", "cuda", "mps" or a torch.device; the model is moved there.
        fast: CPU fast path (bf16 where it measures faster for this model on this CPU; early
            stop once an object is absent for ``absent_stop_frames`` frames). CUDA always uses
            bf16 autocast.
        encode_batch: frames encoded per image-encoder call during propagation (default 1 on CPU,
            4 on CUDA: on a 2-core CPU a 4-frame batch costs 1.2-1.4x more per frame than single
            frames, its activations outgrow the caches; on a GPU larger batches fill the device).
        absent_stop_frames: stop tracking an object in a direction after this many consecutive
            frames without it (default 5 when ``fast`` else never).
        max_cached_frames: bound on cached frame features (None = keep all; evicts oldest).
    """

    def __init__(
        self,
        model: SAM2Base,
        device: str | torch.device = "cpu",
        fast: bool = False,
        encode_batch: int | None = None,
        absent_stop_frames: int | None = None,
        max_cached_frames: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.fast = fast
        default_batch = 4 if self.device.type == "cuda" else 1
        self.encode_batch = max(1, encode_batch if encode_batch is not None else default_batch)
        self.absent_stop_frames = absent_stop_frames if absent_stop_frames is not None else (5 if fast else None)
        self.max_cached_frames = max_cached_frames
        self.autocast_dtype: torch.dtype | None = None
        if self.device.type == "cuda":
            self.autocast_dtype = torch.bfloat16
        elif fast and self.device.type == "cpu" and _cpu_bf16_pays(self.model):
            self.autocast_dtype = torch.bfloat16
        # On a CPU, autocast re-casts every fp32 weight at every call; the encoder (70% of a
        # frame) runs from bf16 weights cast once instead (2-5% less time per frame, measured).
        self._encoder: torch.nn.Module | None = None
        if self.autocast_dtype is torch.bfloat16 and self.device.type == "cpu":
            self._encoder = _bf16_encoder(self.model)

    # ------------------------------------------------------------------ helpers
    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _features(self, state: InferenceState, frame_idx: int, upcoming: Sequence[int] = ()) -> ImageFeatures:
        """Cached features of ``frame_idx``; on a miss also encodes uncached ``upcoming`` frames."""
        feats = state.features.get(frame_idx)
        if feats is not None:
            return feats
        batch = [frame_idx]
        for t in upcoming:
            if len(batch) >= self.encode_batch:
                break
            if t not in state.features and t not in batch:
                batch.append(t)
        from medsam2.preprocessing import to_model_input

        images = to_model_input(state.frames[batch], state.image_size, device=self.device)
        with self._autocast():
            enc = self.model.encode_image(images, self._encoder)
        state.encode_count += len(batch)
        for i, t in enumerate(batch):
            state.features[t] = enc.select(i)
        if self.max_cached_frames is not None:
            while len(state.features) > max(self.max_cached_frames, len(batch)):
                oldest = next(k for k in state.features if k not in batch)
                del state.features[oldest]
        return state.features[frame_idx]

    def _track(
        self,
        state: InferenceState,
        obj: ObjectTrack,
        frame_idx: int,
        is_init_cond_frame: bool,
        points: PointInputs | None,
        mask: torch.Tensor | None,
        reverse: bool,
        run_mem_encoder: bool,
        prev_logits: torch.Tensor | None = None,
        upcoming: Sequence[int] = (),
    ) -> TrackOutput:
        feats = self._features(state, frame_idx, upcoming)
        with self._autocast():
            out = self.model.track_step(
                frame_idx,
                is_init_cond_frame,
                feats,
                points,
                mask,
                obj.cond,
                obj.non_cond,
                state.num_frames,
                reverse=reverse,
                run_mem_encoder=run_mem_encoder,
                prev_sam_mask_logits=prev_logits,
            )
        return _compact(out)

    def _result(self, state: InferenceState, frame_idx: int, outs: list[TrackOutput | None]) -> FrameResult:
        n = len(outs)
        s4 = state.image_size // 4
        low = torch.full((n, 1, s4, s4), NO_OBJ_SCORE, dtype=torch.float32, device=self.device)
        scores = np.full(n, NO_OBJ_SCORE, dtype=np.float32)
        ious = np.zeros(n, dtype=np.float32)
        for i, out in enumerate(outs):
            if out is None:
                continue
            low[i] = out.pred_masks[0].float()
            scores[i] = float(out.object_score_logits.reshape(-1)[0])
            ious[i] = float(out.ious.reshape(-1)[0])
        if (state.height, state.width) != (s4, s4):
            full = F.interpolate(low, size=(state.height, state.width), mode="bilinear", align_corners=False)
        else:
            full = low
        logits = full[:, 0].float().cpu().numpy()
        return FrameResult(frame_idx, state.obj_ids, logits > 0, logits, scores, ious)

    def _object(self, state: InferenceState, obj_id: int) -> ObjectTrack:
        if obj_id not in state.objects:
            state.objects[obj_id] = ObjectTrack(obj_id)
        return state.objects[obj_id]

    # ------------------------------------------------------------------ public API
    @torch.inference_mode()
    def init_state(
        self,
        array: np.ndarray,
        modality: str = "CT",
        window: str | tuple[float, float] | None = None,
        display: bool = False,
    ) -> InferenceState:
        """Start a session on a ``(D, H, W)`` volume or ``(T, H, W)`` / ``(T, H, W, 3)`` video.

        Intensities are mapped to uint8 with ``medsam2.preprocessing.to_uint8(array, modality, window)``;
        with ``display`` the array already holds uint8 display values (an application that windows
        its slices for the screen passes the very same pixels) and is used as it is.
        No frame is encoded yet.
        """
        from medsam2.preprocessing import to_uint8

        arr = np.asarray(array)
        if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] != 3):
            raise ValueError(f"expected a (D,H,W) volume or (T,H,W[,3]) video, got shape {arr.shape}")
        if display and arr.dtype != np.uint8:
            raise ValueError(f"display frames must be uint8, got {arr.dtype}")
        frames = arr if display else to_uint8(arr, modality, window)
        return InferenceState(
            frames=frames,
            num_frames=int(frames.shape[0]),
            height=int(frames.shape[1]),
            width=int(frames.shape[2]),
            image_size=self.model.image_size,
        )

    @torch.inference_mode()
    def add_prompt(
        self,
        state: InferenceState,
        frame_idx: int,
        obj_id: int,
        box: Sequence[float] | None = None,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
        mask: np.ndarray | None = None,
        clear_old_points: bool = True,
    ) -> FrameResult:
        """Prompt ``obj_id`` on ``frame_idx`` with a box, clicks and/or a mask (original pixels).

        The frame becomes a conditioning frame. On a frame that already has a prediction (tracked
        or prompted), that prediction's logits are fed as a mask prompt with the new clicks, so
        clicks act as corrections. With ``clear_old_points=False`` clicks add to earlier ones.
        """
        frame_idx = self._check_frame(state, frame_idx)
        if mask is not None and (box is not None or points is not None):
            raise ValueError("give either a mask or box/points, not both")
        if mask is None and box is None and points is None:
            raise ValueError("a prompt needs a box, points or a mask")
        obj = self._object(state, int(obj_id))
        is_init = frame_idx not in obj.tracked
        reverse = obj.tracked.get(frame_idx, False)
        if mask is not None:
            mask_t = self._mask_to_model(state, mask)
            obj.masks[frame_idx] = mask_t
            obj.points.pop(frame_idx, None)
            out = self._track(state, obj, frame_idx, is_init, None, mask_t, reverse, run_mem_encoder=False)
        else:
            new = self._points_to_model(state, box, points, labels)
            old = obj.points.get(frame_idx)
            if not clear_old_points and old is not None:
                if box is not None:
                    raise ValueError("a box must come before clicks; use clear_old_points=True")
                new = PointInputs(
                    torch.cat([old.coords, new.coords], dim=1), torch.cat([old.labels, new.labels], dim=1)
                )
            obj.points[frame_idx] = new
            obj.masks.pop(frame_idx, None)
            prev = obj.output(frame_idx)
            prev_logits = None
            if prev is not None:
                prev_logits = prev.pred_masks.to(self.device).float().clamp(-32.0, 32.0)
            out = self._track(
                state,
                obj,
                frame_idx,
                is_init,
                new,
                None,
                reverse,
                run_mem_encoder=False,
                prev_logits=prev_logits,
            )
        obj.pending[frame_idx] = out
        return self._result(state, frame_idx, [o.output(frame_idx) for o in state.objects.values()])

    @torch.inference_mode()
    def propagate(
        self,
        state: InferenceState,
        direction: Direction = "both",
        start_frame: int | None = None,
        max_frames: int | None = None,
        should_cancel: Callable[[], bool] = lambda: False,
    ) -> Iterator[FrameResult]:
        """Track every object from ``start_frame`` (default: first conditioning frame).

        Yields one :class:`FrameResult` per frame as soon as it is computed; "both" runs forward
        then backward from the start frame (which is yielded once). ``should_cancel`` is checked
        before each frame; returning True stops the generator. Arguments are checked and new
        prompts committed when this is called, before the first frame is requested.
        """
        if direction not in ("both", "forward", "backward"):
            raise ValueError(f"direction must be 'both', 'forward' or 'backward', got {direction!r}")
        if max_frames is not None and int(max_frames) < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}")
        self._commit_pending(state)
        if start_frame is None:
            start_frame = min(t for o in state.objects.values() for t in o.cond)
        start = self._check_frame(state, start_frame)
        limit = state.num_frames if max_frames is None else int(max_frames)
        orders: list[tuple[bool, list[int]]] = []
        if direction in ("both", "forward"):
            orders.append((False, list(range(start, min(start + limit, state.num_frames - 1) + 1))))
        if direction in ("both", "backward"):
            first = start - 1 if direction == "both" else start
            orders.append((True, list(range(first, max(start - limit, 0) - 1, -1))))
        return self._run(state, orders, should_cancel)

    @torch.inference_mode()
    def _run(
        self,
        state: InferenceState,
        orders: list[tuple[bool, list[int]]],
        should_cancel: Callable[[], bool],
    ) -> Iterator[FrameResult]:
        for reverse, order in orders:
            absent = {oid: 0 for oid in state.objects}
            for pos, frame_idx in enumerate(order):
                if should_cancel():
                    return
                upcoming = order[pos + 1 : pos + self.encode_batch]
                outs = [self._step(state, obj, frame_idx, reverse, absent, upcoming) for obj in state.objects.values()]
                yield self._result(state, frame_idx, outs)

    def _step(
        self,
        state: InferenceState,
        obj: ObjectTrack,
        frame_idx: int,
        reverse: bool,
        absent: dict[int, int],
        upcoming: Sequence[int],
    ) -> TrackOutput | None:
        out = obj.cond.get(frame_idx)
        if out is None:
            k = self.absent_stop_frames
            if k is not None and absent[obj.obj_id] >= k:
                # Early stop: the object has left; do not spend compute and drop stale results.
                obj.non_cond.pop(frame_idx, None)
                obj.tracked.pop(frame_idx, None)
                return None
            out = self._track(state, obj, frame_idx, False, None, None, reverse, True, upcoming=upcoming)
            obj.non_cond[frame_idx] = out
            present = float(out.object_score_logits.reshape(-1)[0]) > 0
            absent[obj.obj_id] = 0 if present else absent[obj.obj_id] + 1
        else:
            absent[obj.obj_id] = 0  # a prompted frame restarts the count
        obj.tracked[frame_idx] = reverse
        return out

    def _commit_pending(self, state: InferenceState) -> None:
        """Encode the memory of newly prompted frames and make them conditioning frames."""
        if not state.objects:
            raise RuntimeError("add a prompt before propagating")
        s = state.image_size
        for obj in state.objects.values():
            for frame_idx, out in obj.pending.items():
                feats = self._features(state, frame_idx)
                high = resize_bilinear(out.pred_masks.to(self.device).float(), (s, s))
                with self._autocast():
                    mem, pos = self.model.encode_memory(feats, high, out.object_score_logits, True)
                out.maskmem_features = mem.to(torch.bfloat16)
                out.maskmem_pos_enc = pos
                obj.cond[frame_idx] = out
                obj.non_cond.pop(frame_idx, None)
            obj.pending.clear()
            if not obj.cond:
                raise RuntimeError(f"object {obj.obj_id} has no prompt; add one before propagating")

    def reset(self, state: InferenceState) -> None:
        """Forget all objects, prompts and results; keep the cached frame features."""
        state.objects.clear()

    def remove_object(self, state: InferenceState, obj_id: int) -> None:
        """Forget one object (unknown ids are ignored)."""
        state.objects.pop(int(obj_id), None)

    @torch.inference_mode()
    def propagate_volume(
        self,
        state: InferenceState,
        largest_component: bool = False,
        should_cancel: Callable[[], bool] = lambda: False,
    ) -> dict[int, np.ndarray]:
        """Propagate both ways and return one bool ``(T, H, W)`` mask volume per object.

        With ``largest_component`` the 3D largest connected component of each object is kept
        (``medsam2.postprocess.largest_component_3d``, when available).
        """
        vols = {oid: np.zeros((state.num_frames, state.height, state.width), dtype=bool) for oid in state.objects}
        for res in self.propagate(state, "both", should_cancel=should_cancel):
            for i, oid in enumerate(res.obj_ids):
                vols[oid][res.frame_idx] = res.masks[i]
        if largest_component:
            try:
                from medsam2.postprocess import largest_component_3d
            except ImportError:  # helper not available in this build: return the raw masks
                return vols
            vols = {oid: np.asarray(largest_component_3d(v), dtype=bool) for oid, v in vols.items()}
        return vols

    # ------------------------------------------------------------------ validation / conversion
    @staticmethod
    def _check_frame(state: InferenceState, frame_idx: int) -> int:
        idx = int(frame_idx)
        if not 0 <= idx < state.num_frames:
            raise ValueError(f"frame_idx {frame_idx} out of range [0, {state.num_frames})")
        return idx

    def _points_to_model(
        self,
        state: InferenceState,
        box: Sequence[float] | None,
        points: Sequence[Sequence[float]] | None,
        labels: Sequence[int] | None,
    ) -> PointInputs:
        coords: list[list[float]] = []
        labs: list[int] = []
        if box is not None:
            b = [float(v) for v in box]
            if len(b) != 4 or not all(np.isfinite(b)):
                raise ValueError(f"box must be 4 finite numbers (x0, y0, x1, y1), got {box}")
            if b[2] < b[0] or b[3] < b[1]:
                raise ValueError(f"box must satisfy x0 <= x1 and y0 <= y1, got {box}")
            coords += [[b[0], b[1]], [b[2], b[3]]]
            labs += [2, 3]
        if points is not None:
            pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) if len(points) else np.zeros((0, 2))
            if labels is None:
                raise ValueError("points need labels (1 = foreground, 0 = background)")
            lab = [int(v) for v in labels]
            if len(lab) != len(pts):
                raise ValueError(f"{len(pts)} points but {len(lab)} labels")
            if any(v not in (0, 1) for v in lab):
                raise ValueError("labels must be 0 (background) or 1 (foreground)")
            if not np.all(np.isfinite(pts)):
                raise ValueError("points must be finite")
            coords += pts.tolist()
            labs += lab
        elif labels is not None:
            raise ValueError("labels given without points")
        if not coords:
            raise ValueError("a prompt needs at least one point or a box")
        xy = torch.tensor(coords, dtype=torch.float32)
        scale = torch.tensor([state.image_size / state.width, state.image_size / state.height])
        xy = (xy * scale).unsqueeze(0).to(self.device)
        return PointInputs(xy, torch.tensor([labs], dtype=torch.int32, device=self.device))

    def _mask_to_model(self, state: InferenceState, mask: np.ndarray) -> torch.Tensor:
        m = np.asarray(mask)
        if m.shape != (state.height, state.width):
            raise ValueError(f"mask shape {m.shape} != frame shape {(state.height, state.width)}")
        t = torch.from_numpy(m.astype(bool)).float()[None, None].to(self.device)
        s = state.image_size
        if t.shape[-2:] != (s, s):
            t = (resize_bilinear(t, (s, s), antialias=True) >= 0.5).float()
        return t


def _compact(out: TrackOutput) -> TrackOutput:
    """Drop the full-resolution logits and store memory features as bfloat16 (as the official
    predictor does), which is what later frames attend to."""
    out.pred_masks_high_res = None
    if out.maskmem_features is not None:
        out.maskmem_features = out.maskmem_features.to(torch.bfloat16)
    return out


_BF16_ENCODERS: weakref.WeakKeyDictionary[SAM2Base, torch.nn.Module] = weakref.WeakKeyDictionary()


def _bf16_encoder(model: SAM2Base) -> torch.nn.Module:
    """A bf16 copy of ``model.image_encoder``, made once per model (predictors of one model share it).

    It snapshots the weights: a model whose weights change afterwards needs a new predictor
    built after ``_BF16_ENCODERS.pop(model)``; the app and CLI never change a loaded model.
    """
    enc = _BF16_ENCODERS.get(model)
    if enc is None:
        enc = copy.deepcopy(model.image_encoder).to(torch.bfloat16).eval()
        enc.requires_grad_(False)
        _BF16_ENCODERS[model] = enc
    return enc


_BF16_PAYS: weakref.WeakKeyDictionary[SAM2Base, bool] = weakref.WeakKeyDictionary()


def _cpu_bf16_pays(model: SAM2Base) -> bool:
    """True where this model's image encoder runs clearly faster from bf16 weights on this CPU.

    Measured once per model and process (one warm-up and one timed frame each way: ~1 s for
    SAM2.1-T at 512 on 2 cores), not assumed from CPU flags or model size: on one AVX512-BF16 CPU
    without AMX the bf16 SAM2.1-T encoder was ~1.5x SLOWER than fp32, on an AMD Zen 5 (AVX512-BF16,
    no AMX) 2.5x faster, on a Xeon with AMX 2.8x faster; the 128 px bootstrap model is slower in
    bf16 even on the Zen 5 (2.3 vs 2.0 ms a frame: its products are too small to pay for the
    casts). bf16 must win by 1.2x. CPUs without AVX512-BF16 only emulate it and are not timed.
    ``MEDSAM2_CPU_BF16=1`` / ``0`` skips the measurement.
    """
    forced = os.environ.get("MEDSAM2_CPU_BF16", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    known = _BF16_PAYS.get(model)
    if known is not None:
        return known
    try:
        native = bool(torch.cpu._is_avx512_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    pays = False
    if native:
        frame = torch.randn(1, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(0))
        enc16 = _bf16_encoder(model)

        def timed(fn: Callable[[], object]) -> float:
            fn()  # warm-up: kernel selection, allocator
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

        with torch.inference_mode():
            t32 = timed(lambda: model.encode_image(frame))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                t16 = timed(lambda: model.encode_image(frame, enc16))
        pays = t16 * 1.2 <= t32
        if not pays:
            _BF16_ENCODERS.pop(model, None)  # not used: free the copy
    _BF16_PAYS[model] = pays
    return pays
