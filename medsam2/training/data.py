"""Training data: (volume or video, label map) pairs -> augmented 8-frame clips.

A *case* is a 3D image (Z, H, W) (slices of a volume or frames of a video; RGB videos as
(T, H, W, 3)) with an integer label map (Z, H, W) whose non-zero ids are objects. A *clip* is
``num_frames`` consecutive slices whose first frame shows the chosen object(s), preprocessed
exactly as at inference (``to_uint8`` then ``to_model_input``) and augmented consistently
across its frames.

Sampling is a pure function of ``(seed, epoch, index)``: a resumed run sees the very same
clips the uninterrupted run would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medsam2.preprocessing import to_model_input, to_uint8


@dataclass
class Case:
    """One training/evaluation case.

    Attributes:
        image: (Z, H, W) raw intensities (e.g. int16 HU) or (T, H, W, 3) uint8 video frames.
        labels: (Z, H, W) integer object ids, 0 = background.
        spacing: voxel size in mm, ordered (z, y, x).
        modality: modality code understood by ``to_uint8`` ("CT", "MR", "US", ...).
        window: optional CT window for ``to_uint8``.
        rescale: (slope, intercept) of ``image``: real = image * slope + intercept (a stored case's
            rescale; the window applies to real units, as in the slice renderer and the worker).
        name: for reports.
    """

    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    modality: str = "CT"
    window: str | tuple[float, float] | None = None
    name: str = ""
    object_ids: list[int] = field(default_factory=list)
    rescale: tuple[float, float] = (1.0, 0.0)

    def __post_init__(self) -> None:
        if self.image.shape[:3] != self.labels.shape:
            raise ValueError(f"case {self.name!r}: image {self.image.shape} and labels "
                             f"{self.labels.shape} disagree")
        if not self.object_ids:
            self.object_ids = [int(i) for i in np.unique(self.labels) if i != 0]


def load_nifti_case(image_path: str | Path, label_path: str | Path, modality: str = "CT",
                    window: str | tuple[float, float] | None = None) -> Case:
    """Read an image/label pair with SimpleITK (NIfTI, NRRD, MHA...) into a :class:`Case`."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(image_path))
    lab = sitk.ReadImage(str(label_path))
    sx, sy, sz = img.GetSpacing()
    return Case(image=sitk.GetArrayFromImage(img), labels=sitk.GetArrayFromImage(lab).astype(np.int32),
                spacing=(float(sz), float(sy), float(sx)), modality=modality, window=window,
                name=Path(image_path).name)


def case_from_synthetic(vol: object, name: str = "") -> Case:
    """Wrap a ``medsam2.synthetic`` volume (attributes image, labels, spacing, modality)."""
    return Case(image=np.asarray(vol.image), labels=np.asarray(vol.labels),  # type: ignore[attr-defined]
                spacing=tuple(vol.spacing), modality=getattr(vol, "modality", "CT"),  # type: ignore
                name=name)


@dataclass(frozen=True)
class AugmentConfig:
    """Clip-consistent augmentation. Set ``enabled=False`` for evaluation-like clips."""

    enabled: bool = True
    hflip: float = 0.5
    vflip: float = 0.5
    reverse: float = 0.5  # play the clip backwards (inference propagates both ways)
    rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05  # fraction of the side
    shear_deg: float = 5.0
    brightness: float = 0.1  # shift, fraction of 255
    contrast: float = 0.1  # factor range 1 +- contrast
    frame_jitter: float = 0.02  # extra per-frame brightness shift
    zoom_prob: float = 0.0  # chance of zooming in towards the first object (off in the recipe)
    zoom: tuple[float, float] = (1.0, 2.0)  # zoom factor range when zooming


@dataclass
class Clip:
    """One training sample.

    Attributes:
        images: (T, 3, S, S) float32, ImageNet-normalised model input.
        masks: (O, T, S, S) bool, one ground-truth track per object.
        case_index, object_ids, frames: where it came from (frames in play order).
        start: index in the clip of the frame that shows the objects and gets the first prompt
            (0 unless the clip is tracked both ways from its middle).
    """

    images: torch.Tensor
    masks: torch.Tensor
    case_index: int
    object_ids: list[int]
    frames: list[int]
    start: int = 0


class ClipDataset(torch.utils.data.Dataset):
    """Deterministic random clips from cases.

    ``dataset[i]`` draws clip ``i`` of the current epoch (see :meth:`set_epoch`); its length is
    ``clips_per_epoch``.
    """

    def __init__(self, cases: Sequence[Case], image_size: int, num_frames: int = 8,
                 max_objects: int = 3, clips_per_epoch: int = 100, seed: int = 0,
                 augment: AugmentConfig = AugmentConfig(), key_slice_prob: float = 0.0,
                 single_frame_prob: float = 0.0, mid_clip_prob: float = 0.0, tail_prob: float = 0.0) -> None:
        self.cases = list(cases)
        if not self.cases:
            raise ValueError("no training cases")
        self.image_size = int(image_size)
        self.num_frames = int(num_frames)
        self.max_objects = int(max_objects)
        self.clips_per_epoch = int(clips_per_epoch)
        self.seed = int(seed)
        self.augment = augment
        # chance that a clip starts on the object's largest slice, as the evaluation protocol
        # and a radiologist's first box do; the clip then runs off the object's end, which
        # teaches the object-score head when to stop
        self.key_slice_prob = float(key_slice_prob)
        # chance of a one-frame clip: SAM2 mixes still images into its video training; such a
        # step costs a fraction of a full clip and trains the prompt -> mask path alone
        self.single_frame_prob = float(single_frame_prob)
        # chance that the prompted slice sits at a random place inside the clip instead of at
        # its start: the clip is then tracked forward and backward from it as the predictor's
        # "both" propagation does (the backward pass sees forward-tracked memories)
        self.mid_clip_prob = float(mid_clip_prob)
        # chance that a clip is prompted on one of the object's last two slices (either end) and
        # runs past it: mostly lesion-free frames, so the object-score head learns to say "gone"
        self.tail_prob = float(tail_prob)
        self.epoch = 0
        # windowing once up front: it is deterministic and the costly part of preprocessing
        self._u8 = [to_uint8(c.image, c.modality, c.window, rescale=c.rescale) for c in self.cases]
        # (case, object id, slices showing it) for every object
        self._objects: list[tuple[int, int, np.ndarray, int]] = []
        for ci, c in enumerate(self.cases):
            for oid in c.object_ids:
                areas = (c.labels == oid).reshape(c.labels.shape[0], -1).sum(axis=1)
                zs = np.flatnonzero(areas)
                if zs.size:
                    self._objects.append((ci, oid, zs, int(np.argmax(areas))))
        if not self._objects:
            raise ValueError("no case contains a labelled object")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.clips_per_epoch

    def __getitem__(self, index: int) -> Clip:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        for _ in range(10):
            clip = self._draw(rng, self.augment)
            if clip is not None:
                return clip
        clip = self._draw(rng, AugmentConfig(enabled=False))
        assert clip is not None
        return clip

    def _draw(self, rng: np.random.Generator, aug: AugmentConfig) -> Clip | None:
        ci, oid, zs, key = self._objects[int(rng.integers(len(self._objects)))]
        case = self.cases[ci]
        depth = case.labels.shape[0]
        if self.num_frames > 1 and self.tail_prob > 0 and rng.random() < self.tail_prob:
            t = min(self.num_frames, depth)
            inset = int(rng.integers(0, 2))
            if rng.random() < 0.5:
                z0 = max(int(zs[-1]) - inset, int(zs[0]))
                frames = list(range(z0, z0 + t))
            else:
                z0 = min(int(zs[0]) + inset, int(zs[-1]))
                frames = list(range(z0, z0 - t, -1))
            if 0 <= min(frames) and max(frames) < depth:
                return self._make(rng, aug, ci, oid, frames, 0)
        t = 1 if rng.random() < self.single_frame_prob else min(self.num_frames, depth)
        reverse = aug.enabled and rng.random() < aug.reverse
        # the first frame of the clip (in play order) must show the object; near the volume
        # edge try the other direction, and failing both, a shorter clip
        z0 = key if rng.random() < self.key_slice_prob else int(rng.choice(zs))
        if t > 1 and self.mid_clip_prob > 0 and rng.random() < self.mid_clip_prob:
            lo = min(max(z0 - int(rng.integers(t)), 0), depth - t)
            frames = list(range(lo, lo + t))
            if reverse:
                frames = frames[::-1]
            return self._make(rng, aug, ci, oid, frames, frames.index(z0))
        fwd = list(range(min(z0, depth - t), min(z0, depth - t) + t))
        bwd = list(range(max(z0, t - 1), max(z0, t - 1) - t, -1))
        options = [bwd, fwd] if reverse else [fwd, bwd]
        frames = next((f for f in options if (case.labels[f[0]] == oid).any()),
                      list(range(z0, min(depth, z0 + t))))
        return self._make(rng, aug, ci, oid, frames, 0)

    def _make(self, rng: np.random.Generator, aug: AugmentConfig, ci: int, oid: int, frames: list[int],
              start: int) -> Clip | None:
        """Clip of ``frames`` (play order) of case ``ci`` whose frame ``start`` shows ``oid``."""
        case = self.cases[ci]
        labels = case.labels[frames]
        present = [int(i) for i in np.unique(labels[start]) if i not in (0, oid)]
        rng.shuffle(present)
        ids = [oid] + present[: self.max_objects - 1]
        u8 = self._u8[ci][frames]
        if aug.enabled:
            u8 = _jitter_intensity(u8, rng, aug)
        images = to_model_input(u8, self.image_size)
        masks = torch.from_numpy(np.stack([labels == i for i in ids]).astype(np.float32))
        masks = F.interpolate(masks, size=(self.image_size, self.image_size), mode="nearest")
        if aug.enabled:
            images, masks = _geometric(images, masks, rng, aug, _centroid(masks[0, start]))
        masks_b = masks > 0.5
        keep = [k for k in range(len(ids)) if masks_b[k, start].any()]
        if not keep:
            return None
        return Clip(images=images.contiguous(), masks=masks_b[keep].contiguous(), case_index=ci,
                    object_ids=[ids[k] for k in keep], frames=frames, start=start)


def _jitter_intensity(u8: np.ndarray, rng: np.random.Generator, aug: AugmentConfig) -> np.ndarray:
    """Brightness/contrast change shared by all frames plus a small per-frame shift."""
    x = u8.astype(np.float32)
    c = 1.0 + rng.uniform(-aug.contrast, aug.contrast)
    b = rng.uniform(-aug.brightness, aug.brightness) * 255.0
    per_frame = np.asarray(rng.uniform(-aug.frame_jitter, aug.frame_jitter, size=x.shape[0])) * 255.0
    mean = x.mean()
    shape = (-1,) + (1,) * (x.ndim - 1)
    x = (x - mean) * c + mean + b + per_frame.reshape(shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _centroid(mask: torch.Tensor) -> tuple[float, float]:
    """Centre (x, y) of a (S, S) mask in grid_sample's normalised [-1, 1] coordinates."""
    ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
    h, w = mask.shape
    if xs.numel() == 0:
        return 0.0, 0.0
    return float((xs.float().mean() + 0.5) / w * 2 - 1), float((ys.float().mean() + 0.5) / h * 2 - 1)


def _geometric(images: torch.Tensor, masks: torch.Tensor, rng: np.random.Generator,
               aug: AugmentConfig, focus: tuple[float, float] = (0.0, 0.0)
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flips, a small affine and an optional zoom towards ``focus`` (normalised x, y), identical
    for every frame; images (T,3,S,S), masks (O,T,S,S)."""
    fx, fy = focus
    if rng.random() < aug.hflip:
        images, masks, fx = images.flip(-1), masks.flip(-1), -fx
    if rng.random() < aug.vflip:
        images, masks, fy = images.flip(-2), masks.flip(-2), -fy
    zoom = rng.uniform(*aug.zoom) if rng.random() < aug.zoom_prob else 1.0
    ang = math.radians(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
    shear = math.radians(rng.uniform(-aug.shear_deg, aug.shear_deg))
    s = rng.uniform(*aug.scale)
    tx, ty = rng.uniform(-aug.translate, aug.translate, size=2) * 2  # normalised coords span 2
    # output -> input sampling matrix in normalised coordinates: inverse of (rotate, shear, scale)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    sh = np.array([[1.0, math.tan(shear)], [0.0, 1.0]])
    fwd = rot @ sh * (s * zoom)
    inv = np.linalg.inv(fwd)
    # zooming by z keeps the focus point in view: the output centre samples the input at
    # focus * (1 - 1/z), which is the image centre without zoom
    shift = -inv @ np.array([[tx], [ty]]) + (1 - 1 / zoom) * np.array([[fx], [fy]])
    theta = np.concatenate([inv, shift], axis=1)
    th = torch.tensor(theta, dtype=torch.float32)[None]
    t, _, h, w = images.shape
    grid = F.affine_grid(th.expand(t, -1, -1), [t, 3, h, w], align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    o = masks.shape[0]
    mgrid = F.affine_grid(th.expand(o, -1, -1), [o, masks.shape[1], h, w], align_corners=False)
    masks = F.grid_sample(masks, mgrid, mode="nearest", padding_mode="zeros", align_corners=False)
    return images, masks
