"""Synthetic medical images and videos with exact ground truth: the product's one data generator.

Used by the demo (the app writes these volumes to DICOM), the test-suite, the bootstrap fine-tuning and
annotation studies. numpy + scipy only - importing this module never imports torch - and every function
is deterministic for a given ``seed``.

Conventions: volumes are ``(D, H, W)`` = ``(z, y, x)`` arrays, ``spacing`` is ``(z, y, x)`` in mm, axial
slices are shown as radiologists do (anterior at the top, the patient's right on the image left).
Videos are ``(T, H, W)`` grayscale or ``(T, H, W, 3)`` RGB ``uint8`` with ``(T, H, W)`` ``uint8`` masks.

The anatomy is laid out in normalised coordinates (-1..1 across the field of view) so that any shape
gives a full body; lesion sizes are in mm (so they scale with ``spacing``) and are capped to what fits
in the host organ when the field of view is small.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = [
    "LesionInfo",
    "SyntheticVideo",
    "SyntheticVolume",
    "make_ct_volume",
    "make_echo_video",
    "make_endoscopy_video",
    "make_lesion_training_pairs",
    "make_mr_volume",
]

# Tissue codes of the phantom's label map (internal).
AIR, FAT, MUSCLE, VISCERA, LIVER, SPLEEN, KIDNEY, CORTICAL, MARROW, AORTA = range(10)

# Mean Hounsfield units per tissue (unenhanced abdominal CT).
_CT_HU = {
    AIR: -1000.0,
    FAT: -100.0,
    MUSCLE: 50.0,
    VISCERA: 15.0,
    LIVER: 60.0,
    SPLEEN: 45.0,
    KIDNEY: 30.0,
    CORTICAL: 700.0,
    MARROW: 250.0,
    AORTA: 40.0,
}
# T1-weighted-like MRI signal (arbitrary units, 0..~1000).
_MR_SIGNAL = {
    AIR: 0.0,
    FAT: 800.0,
    MUSCLE: 300.0,
    VISCERA: 380.0,
    LIVER: 480.0,
    SPLEEN: 360.0,
    KIDNEY: 420.0,
    CORTICAL: 40.0,
    MARROW: 620.0,
    AORTA: 120.0,
}
_ORGAN_NAMES = {LIVER: "liver", SPLEEN: "spleen", KIDNEY: "kidney"}

#: Field of view of the default CT volume (z, y, x) in mm; training pairs keep it at any shape.
DEFAULT_CT_SHAPE = (48, 256, 256)
DEFAULT_CT_SPACING = (2.5, 0.8, 0.8)


Vec3 = tuple[float, float, float]
# (label, bounding-box slices, center (z,y,x) voxels, radii (z,y,x) mm, organ code) of a placed lesion.
_Placed = tuple[int, tuple[slice, ...], Vec3, Vec3, int]


@dataclass
class LesionInfo:
    """One lesion of a synthetic volume.

    ``center`` is (z, y, x) in voxel indices (float, centre of the nominal ellipsoid); ``radii`` are the
    nominal ellipsoid semi-axes (z, y, x) in mm before the irregular deformation; ``contrast`` is the
    signed intensity difference to the host organ (HU for CT, signal units for MR); ``kind`` is
    "hypodense"/"hyperdense" (CT) or "hypointense"/"hyperintense" (MR).
    """

    label: int
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    contrast: float
    kind: str
    organ: str = "liver"
    n_voxels: int = 0

    @property
    def radius_mm(self) -> float:
        """Nominal radius in mm: geometric mean of the three semi-axes."""
        return float(np.prod(self.radii) ** (1.0 / 3.0))


@dataclass
class SyntheticVolume:
    """A synthetic 3D scan: ``image`` (D,H,W) (int16 HU for CT, uint16 for MR), ``labels`` (D,H,W) uint8
    with 0 = background and 1..N = lesion ids matching ``lesions[i].label``."""

    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    modality: str
    lesions: list[LesionInfo] = field(default_factory=list)

    def key_slice(self, label: int) -> int:
        """Index of the axial slice where lesion ``label`` has its largest area."""
        areas = (self.labels == label).sum(axis=(1, 2))
        if not areas.any():
            raise ValueError(f"lesion {label} is not in this volume")
        return int(np.argmax(areas))

    def box(self, label: int, slice_index: int | None = None) -> tuple[int, int, int, int]:
        """Tight box ``(x0, y0, x1, y1)`` (inclusive pixel indices) of a lesion on an axial slice
        (default: its key slice)."""
        k = self.key_slice(label) if slice_index is None else slice_index
        ys, xs = np.nonzero(self.labels[k] == label)
        if ys.size == 0:
            raise ValueError(f"lesion {label} is not on slice {k}")
        return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@dataclass
class SyntheticVideo:
    """A synthetic video: ``frames`` (T,H,W) or (T,H,W,3) uint8, ``masks`` (T,H,W) uint8 (object id 1)."""

    frames: np.ndarray
    masks: np.ndarray
    fps: float
    modality: str


# ----------------------------------------------------------------------------------------------------
# helpers


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], coarse: tuple[int, ...]) -> np.ndarray:
    """Low-frequency noise of ``shape``: a coarse normal grid blended with Gaussian weights, unit std.

    Separable matrix products instead of ``ndimage.zoom``: about 50x faster on a 256x256x48 volume.
    """
    out = rng.standard_normal(coarse)
    for axis, (n, c) in enumerate(zip(shape, coarse, strict=True)):
        u = (np.arange(n) + 0.5) / n * c - 0.5  # output voxel centres in coarse-grid units
        w = np.exp(-0.5 * ((u[:, None] - np.arange(c)[None, :]) / 0.6) ** 2)
        w /= w.sum(axis=1, keepdims=True)
        out = np.moveaxis(np.tensordot(w, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return (out / (out.std() + 1e-8)).astype(np.float32)


def _norm_grid(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open grids of normalised coordinates -1..1 (voxel centres) for z, y, x."""
    return tuple(  # type: ignore[return-value]
        ((np.arange(n, dtype=np.float32) + 0.5) / n * 2.0 - 1.0).reshape([n if i == a else 1 for i in range(3)])
        for a, n in enumerate(shape)
    )


def _ellipsoid(z, y, x, center, axes) -> np.ndarray:
    """Squared normalised distance of an axis-aligned ellipsoid (< 1 inside)."""
    return ((z - center[0]) / axes[0]) ** 2 + ((y - center[1]) / axes[1]) ** 2 + ((x - center[2]) / axes[2]) ** 2


def _phantom_tissues(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Tissue-code map (D,H,W) int8 of a simple abdomen: body wall, liver, spleen, kidneys, spine, aorta."""
    z, y, x = _norm_grid(shape)
    jitter = lambda s=0.04: float(rng.uniform(-s, s))  # noqa: E731 - tiny local helper
    # Organ outlines are perturbed by one low-frequency field so that they are not perfect ellipsoids.
    wobble = 0.12 * _smooth_noise(rng, shape, (max(2, shape[0] // 12), 6, 6))
    tissues = np.full(shape, AIR, dtype=np.int8)

    # Body: elliptic cylinder whose size changes a little along z; fat, then a muscle wall, then viscera.
    zscale = 1.0 + 0.03 * np.sin(np.pi * z + rng.uniform(0, np.pi))
    ry, rx = 0.80 + jitter(), 0.92 + jitter(0.03)
    body_d = ((y - jitter(0.02)) / (ry * zscale)) ** 2 + (x / (rx * zscale)) ** 2
    tissues[np.broadcast_to(body_d < 1.0, shape)] = FAT
    wall_out = ((y / ((ry - 0.07) * zscale)) ** 2 + (x / ((rx - 0.07) * zscale)) ** 2) < 1.0
    tissues[np.broadcast_to(wall_out, shape)] = MUSCLE
    inner = ((y / ((ry - 0.12) * zscale)) ** 2 + (x / ((rx - 0.12) * zscale)) ** 2) < 1.0
    tissues[np.broadcast_to(inner, shape)] = VISCERA

    # Organs (normalised (z, y, x) centres and semi-axes); the patient's right is the image left (x < 0).
    organs = [
        (
            LIVER,
            (-0.1 + jitter(), -0.08 + jitter(), -0.36 + jitter()),
            (0.95, 0.50 + jitter(), 0.40 + jitter()),
        ),
        (SPLEEN, (0.05 + jitter(), 0.18 + jitter(), 0.52 + jitter()), (0.55, 0.22, 0.15)),
        (KIDNEY, (0.35 + jitter(), 0.35 + jitter(0.02), -0.34 + jitter(0.02)), (0.55, 0.16, 0.11)),
        (KIDNEY, (0.40 + jitter(), 0.35 + jitter(0.02), 0.34 + jitter(0.02)), (0.55, 0.16, 0.11)),
    ]
    for code, center, axes in organs:
        tissues[(_ellipsoid(z, y, x, center, axes) + wobble < 1.0) & inner] = code

    # Spine: vertebral body (cortex + marrow) and posterior elements, all along z; aorta in front of it.
    sy, sx = 0.52 + jitter(0.02), jitter(0.02)
    vert = ((y - sy) / 0.13) ** 2 + ((x - sx) / 0.12) ** 2
    post = ((y - sy - 0.16) / 0.07) ** 2 + ((x - sx) / 0.05) ** 2
    tissues[np.broadcast_to((vert < 1.0) | (post < 1.0), shape)] = CORTICAL
    tissues[np.broadcast_to(vert < 0.6, shape)] = MARROW
    aorta = ((y - sy + 0.22) / 0.06) ** 2 + ((x - sx - 0.07) / 0.06) ** 2 < 1.0
    tissues[np.broadcast_to(aorta, shape)] = AORTA
    return tissues


def _place_lesions(
    rng: np.random.Generator,
    tissues: np.ndarray,
    spacing: tuple[float, float, float],
    n_lesions: int,
) -> tuple[np.ndarray, list[_Placed]]:
    """Irregular lesion blobs inside organs, not touching each other.

    Returns the label map (D,H,W) uint8 and, per lesion, (label, bounding-box slices, center (z,y,x)
    voxels, radii (z,y,x) mm, organ code).
    """
    if not 0 <= n_lesions <= 255:
        raise ValueError(f"n_lesions must be in 0..255, got {n_lesions}")
    shape = tissues.shape
    labels: np.ndarray = np.zeros(shape, dtype=np.uint8)
    sp = np.asarray(spacing, dtype=np.float64)
    placed: list[_Placed] = []
    organ_masks = {code: tissues == code for code in (LIVER, SPLEEN, KIDNEY)}
    organ_sizes = {}
    for code, m in organ_masks.items():
        if m.any():
            # Half the smallest extent of the organ (mm) bounds how big a lesion inside it can be.
            coords = np.nonzero(m)
            extent = [(c.max() - c.min() + 1) * s for c, s in zip(coords, sp, strict=True)]
            organ_sizes[code] = 0.5 * min(extent[1], extent[2])
    choices = [c for c in (LIVER, SPLEEN, KIDNEY) if c in organ_sizes]
    candidates = {c: np.flatnonzero(organ_masks[c]) for c in choices}
    if n_lesions and not choices:
        raise ValueError("volume too small to hold any organ for lesions")
    weights = np.array([{LIVER: 0.7, SPLEEN: 0.15, KIDNEY: 0.15}[c] for c in choices])
    for label in range(1, n_lesions + 1):
        organ = int(rng.choice(choices, p=weights / weights.sum()))
        # Radius 5..25 mm, but at most 60% of the organ's half-size and at least 1.5 in-plane voxels.
        r_hi = min(25.0, 0.6 * organ_sizes[organ])
        r_lo = min(5.0, r_hi)
        r_floor = 1.5 * float(sp[1:].max())
        r = max(float(rng.uniform(r_lo, r_hi)), r_floor)
        done = False
        for attempt in range(200):
            if attempt and attempt % 25 == 0:
                r = max(r * 0.8, r_floor)  # does not fit: try smaller
            f = rng.uniform(0.8, 1.25, size=3)
            radii_mm: Vec3 = (float(r * f[0]), float(r * f[1]), float(r * f[2]))
            rad_vox = np.asarray(radii_mm) / sp
            c = np.array(np.unravel_index(candidates[organ][rng.integers(candidates[organ].size)], shape), float)
            if np.any(c - rad_vox < 0) or np.any(c + rad_vox > np.asarray(shape) - 1):
                continue  # a lesion cut by the volume's edge would not have its stated size
            lo = np.maximum(np.floor(c - rad_vox * 1.35).astype(int), 0)
            hi = np.minimum(np.ceil(c + rad_vox * 1.35).astype(int) + 1, shape)
            box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            sub = tuple(hi - lo)
            zz, yy, xx = (
                (np.arange(lo[a], hi[a], dtype=np.float32) - c[a]).reshape([-1 if i == a else 1 for i in range(3)])
                / rad_vox[a]
                for a in range(3)
            )
            d = np.sqrt(zz**2 + yy**2 + xx**2)
            noise = rng.standard_normal(sub)
            noise = ndimage.gaussian_filter(noise, sigma=np.maximum(rad_vox * 0.45, 0.5))
            noise /= noise.std() + 1e-8
            blob = d + 0.22 * noise < 1.0
            n_blob = int(blob.sum())
            if n_blob < 4:
                continue
            inside = blob & organ_masks[organ][box]
            # Keep a 2-voxel gap to other lesions so ids never touch.
            near = ndimage.binary_dilation(labels[box] > 0, iterations=2)
            if inside.sum() < 0.92 * n_blob or (blob & near).any():
                continue
            labels[box][inside] = label
            placed.append((label, box, (float(c[0]), float(c[1]), float(c[2])), radii_mm, organ))
            done = True
            break
        if not done:
            raise ValueError(f"could not place lesion {label}: volume too small or too crowded")
    return labels, placed


def _fov_scaled_spacing(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    """Spacing that keeps the default CT field of view at another shape."""
    return tuple(  # type: ignore[return-value]
        float(s0 * n0 / n) for s0, n0, n in zip(DEFAULT_CT_SPACING, DEFAULT_CT_SHAPE, shape, strict=True)
    )


def _spacing3(spacing: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be three positive numbers (z, y, x) in mm, got {spacing}")
    return float(spacing[0]), float(spacing[1]), float(spacing[2])


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape) < 4:
        raise ValueError(f"shape must be (D, H, W) with each side >= 4, got {shape}")
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------
# volumes


def make_ct_volume(
    seed: int,
    shape: tuple[int, int, int] = DEFAULT_CT_SHAPE,
    n_lesions: int = 3,
    spacing: tuple[float, float, float] = DEFAULT_CT_SPACING,
) -> SyntheticVolume:
    """Abdominal CT-like volume with ``n_lesions`` liver/spleen/kidney lesions.

    Air -1000 HU, subcutaneous fat -100, muscle wall 50, viscera ~15, liver ~60, spleen ~45, kidneys ~30,
    spine cortex ~700 / marrow ~250. Lesions are irregular blobs (radius 5-25 mm where the organ is big
    enough), hypo- or hyperdense by 30..80 HU. Gaussian noise of 10..15 HU and a slight in-plane blur
    (partial volume). Returns int16 HU image and uint8 lesion ids.
    """
    shape = _check_shape(shape)
    spacing = _spacing3(spacing)
    rng = np.random.default_rng(seed)
    tissues = _phantom_tissues(rng, shape)
    labels, placed = _place_lesions(rng, tissues, spacing, n_lesions)
    lut = np.array([_CT_HU[k] for k in range(10)], dtype=np.float32)
    lut[1:] += rng.uniform(-5, 5, size=9).astype(np.float32)  # patient-to-patient variation
    image = lut[tissues]
    image += 6.0 * _smooth_noise(rng, shape, (max(2, shape[0] // 8), 8, 8)) * (tissues != AIR)
    lesions = []
    for label, box, center, radii, organ in placed:
        delta = float(rng.uniform(30, 80)) * (-1.0 if rng.random() < 0.6 else 1.0)
        image[box][labels[box] == label] += delta
        lesions.append(
            LesionInfo(
                label=label,
                center=center,
                radii=radii,
                contrast=delta,
                kind="hypodense" if delta < 0 else "hyperdense",
                organ=_ORGAN_NAMES[organ],
                n_voxels=int((labels[box] == label).sum()),
            )
        )
    image = ndimage.gaussian_filter(image, sigma=(0.0, 0.6, 0.6))
    image += rng.normal(0.0, rng.uniform(10, 15), size=shape).astype(np.float32)
    hu = np.clip(np.rint(image), -1024, 3071).astype(np.int16)
    return SyntheticVolume(image=hu, labels=labels, spacing=spacing, modality="CT", lesions=lesions)


def make_mr_volume(
    seed: int,
    shape: tuple[int, int, int] = DEFAULT_CT_SHAPE,
    n_lesions: int = 3,
    spacing: tuple[float, float, float] = DEFAULT_CT_SPACING,
) -> SyntheticVolume:
    """T1-weighted-like abdominal MRI (uint16, 0..~1000 arbitrary units) with lesions.

    Same anatomy model as :func:`make_ct_volume`; lesions are 25..60% darker or brighter than their
    organ; a smooth multiplicative bias field (about +-20%) and Rician noise mimic MR acquisition.
    """
    shape = _check_shape(shape)
    spacing = _spacing3(spacing)
    rng = np.random.default_rng(seed)
    tissues = _phantom_tissues(rng, shape)
    labels, placed = _place_lesions(rng, tissues, spacing, n_lesions)
    lut = np.array([_MR_SIGNAL[k] for k in range(10)], dtype=np.float32)
    lut[1:] *= rng.uniform(0.92, 1.08, size=9).astype(np.float32)
    image = lut[tissues]
    lesions = []
    for label, box, center, radii, organ in placed:
        frac = float(rng.uniform(0.25, 0.6)) * (-1.0 if rng.random() < 0.5 else 1.0)
        delta = frac * float(lut[organ])
        image[box][labels[box] == label] += delta
        lesions.append(
            LesionInfo(
                label=label,
                center=center,
                radii=radii,
                contrast=delta,
                kind="hypointense" if delta < 0 else "hyperintense",
                organ=_ORGAN_NAMES[organ],
                n_voxels=int((labels[box] == label).sum()),
            )
        )
    bias = np.exp(0.1 * _smooth_noise(rng, shape, (2, 3, 3)))
    image = ndimage.gaussian_filter(image * bias, sigma=(0.0, 0.7, 0.7))
    sigma = float(rng.uniform(10, 18))
    real = image + rng.normal(0.0, sigma, size=shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, size=shape).astype(np.float32)
    mag = np.sqrt(real**2 + imag**2)
    img = np.clip(np.rint(mag), 0, 4095).astype(np.uint16)
    return SyntheticVolume(image=img, labels=labels, spacing=spacing, modality="MR", lesions=lesions)


def make_lesion_training_pairs(
    seed: int,
    n_cases: int,
    shape: tuple[int, int, int] = (32, 128, 128),
    n_lesions: int = 3,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_cases`` CT volumes for training: list of ``(image int16 HU (D,H,W), labels uint8 (D,H,W))``.

    ``labels`` holds lesion ids 1..n (several objects per case). The spacing is chosen so that every
    case covers the default field of view (lesions stay 5..25 mm); case ``i`` equals
    ``make_ct_volume(seed=[seed, i] hashed, ...)``, so cases differ from each other and from any other
    ``seed``.
    """
    if n_cases < 0:
        raise ValueError(f"n_cases must be >= 0, got {n_cases}")
    shape = _check_shape(shape)
    spacing = _fov_scaled_spacing(shape)
    pairs = []
    for i in range(n_cases):
        case_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])
        vol = make_ct_volume(case_seed, shape=shape, n_lesions=n_lesions, spacing=spacing)
        pairs.append((vol.image, vol.labels))
    return pairs


# ----------------------------------------------------------------------------------------------------
# videos


def _check_video_args(n_frames: int, size: tuple[int, int]) -> tuple[int, int]:
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f"size must be (H, W) with each side >= 32, got {size}")
    return int(size[0]), int(size[1])


def make_echo_video(seed: int, n_frames: int = 32, size: tuple[int, int] = (224, 224)) -> SyntheticVideo:
    """Apical echocardiography-like grayscale video (T,H,W) uint8 with the left ventricle as object 1.

    A fan-shaped sector (apex at the top) of speckled tissue; the left-ventricular cavity is a dark,
    slightly tilted ellipse inside a bright myocardial wall whose long/short axes shrink by about
    12%/28% at end-systole (area about -35%) with a heart period of 18..24 frames at 25 fps. A right
    ventricle and left atrium are dark distractors outside the mask. Speckle decorrelates over time.
    """
    h, w = _check_video_args(n_frames, size)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    apex_y, apex_x = 0.03 * h, w / 2.0
    r = np.hypot(yy - apex_y, xx - apex_x)
    theta = np.arctan2(xx - apex_x, yy - apex_y)  # 0 = straight down the beam axis
    radius, half_angle = 0.93 * h, np.deg2rad(rng.uniform(36, 42))
    sector = (r < radius) & (np.abs(theta) < half_angle)
    depth_gain = np.exp(-0.7 * r / radius)  # attenuation with depth, partly compensated (TGC)

    cy, cx = h * rng.uniform(0.45, 0.5), w * (0.5 + rng.uniform(-0.04, 0.04))
    a0, b0 = h * rng.uniform(0.22, 0.26), w * rng.uniform(0.10, 0.13)  # end-diastolic semi-axes
    tilt = np.deg2rad(rng.uniform(-12, 12))
    period, phase = rng.uniform(18, 24), rng.uniform(0, 2 * np.pi)
    cos_t, sin_t = np.cos(tilt), np.sin(tilt)
    u = (yy - cy) * cos_t + (xx - cx) * sin_t  # along the long axis
    v = -(yy - cy) * sin_t + (xx - cx) * cos_t

    def ellipse(cy_, cx_, ay, bx):
        return ((yy - cy_) / ay) ** 2 + ((xx - cx_) / bx) ** 2 < 1.0

    rv = ellipse(cy + 0.02 * h, cx - 0.26 * w, 0.7 * a0, 0.7 * b0)
    la = ellipse(cy + a0 + 0.16 * h, cx + 0.02 * w, 0.11 * h, 0.9 * b0)
    speckle_prev = None
    frames = np.zeros((n_frames, h, w), dtype=np.uint8)
    masks = np.zeros((n_frames, h, w), dtype=np.uint8)
    for t in range(n_frames):
        c = 0.5 * (1.0 - np.cos(2 * np.pi * t / period + phase))  # 0 = end-diastole, 1 = end-systole
        a, b = a0 * (1 - 0.12 * c), b0 * (1 - 0.28 * c)
        wall = 0.035 * h * (1 + 0.4 * c)  # the myocardium thickens as it contracts
        d_cav = (u / a) ** 2 + (v / b) ** 2
        d_wall = (u / (a + wall)) ** 2 + (v / (b + wall)) ** 2
        cavity = (d_cav < 1.0) & sector
        tissue = np.full((h, w), 70.0, dtype=np.float32)
        tissue[d_wall < 1.0] = 165.0
        tissue[rv | la] = 14.0
        tissue[cavity] = 10.0
        tissue = ndimage.gaussian_filter(tissue, 1.2)
        # Speckle: magnitude of a spatially correlated complex Gaussian field (Rayleigh), longer along
        # the lateral direction as in real B-mode, blended with the previous frame's field.
        field_ = rng.standard_normal((2, h, w)).astype(np.float32)
        field_ = ndimage.gaussian_filter(field_, sigma=(0, 0.8, 1.6))
        if speckle_prev is not None:
            field_ = 0.75 * speckle_prev + np.sqrt(1 - 0.75**2) * field_ / (field_.std() + 1e-8)
        else:
            field_ /= field_.std() + 1e-8
        speckle_prev = field_
        rayleigh = np.hypot(field_[0], field_[1]) / np.sqrt(np.pi / 2)  # mean 1
        img = tissue * rayleigh * (0.55 + 0.45 * depth_gain) * 1.3
        img += rng.normal(0, 3.0, size=(h, w))
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8) * sector
        masks[t] = cavity
    return SyntheticVideo(frames=frames, masks=masks, fps=25.0, modality="US")


def make_endoscopy_video(seed: int, n_frames: int = 32, size: tuple[int, int] = (224, 224)) -> SyntheticVideo:
    """Colonoscopy-like RGB video (T,H,W,3) uint8 with a polyp as object 1.

    Pinkish mucosa with low-frequency texture, darker vessels and specular glints, seen through a
    circular field of view with vignetting. The camera pans smoothly, so the polyp (a shaded dome,
    slightly irregular outline) moves across the frame and grows as the scope approaches it.
    """
    h, w = _check_video_args(n_frames, size)
    rng = np.random.default_rng(seed)
    # Mucosa canvas larger than the frame; each frame is a crop at a moving offset (camera pan).
    margin = int(0.25 * max(h, w))
    ch, cw = h + 2 * margin, w + 2 * margin
    shade = 1.0 + 0.12 * _smooth_noise(rng, (ch, cw), (6, 6))
    vessels_field = _smooth_noise(rng, (ch, cw), (14, 14))
    vessels = np.exp(-((vessels_field / 0.12) ** 2))  # thin ridges where the field crosses zero
    base = np.array([0.86, 0.47, 0.42], dtype=np.float32) * rng.uniform(0.92, 1.05, size=3).astype(np.float32)
    canvas = shade[..., None] * base[None, None, :]
    canvas *= 1.0 - 0.35 * vessels[..., None] * np.array([0.3, 0.9, 0.8], dtype=np.float32)
    glints = np.zeros((ch, cw), dtype=np.float32)
    for _ in range(int(rng.integers(4, 9))):
        gy, gx = rng.uniform(0, ch), rng.uniform(0, cw)
        glints[int(gy) % ch, int(gx) % cw] = 1.0
    glints = np.clip(ndimage.gaussian_filter(glints, 2.0) * 60.0, 0, 1)

    # Camera path (top-left corner of the crop in canvas pixels) and polyp placed in canvas coordinates
    # so that it stays inside the circular field of view all the time.
    t_axis = np.arange(n_frames, dtype=np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.6, 1.2) * margin / max(n_frames, 1)
    oy = margin + np.clip(speed * (t_axis - n_frames / 2) * np.sin(direction), -margin, margin)
    ox = margin + np.clip(speed * (t_axis - n_frames / 2) * np.cos(direction), -margin, margin)
    oy = oy + 0.1 * margin * np.sin(2 * np.pi * t_axis / max(n_frames, 2))
    py = margin + h / 2 + rng.uniform(-0.1, 0.1) * h
    px = margin + w / 2 + rng.uniform(-0.1, 0.1) * w
    p_ry0, p_rx0 = h * rng.uniform(0.09, 0.13), w * rng.uniform(0.10, 0.14)
    lobes, lobe_phase = int(rng.integers(3, 6)), rng.uniform(0, 2 * np.pi)
    polyp_tint = np.array([1.05, 0.85, 0.82], dtype=np.float32)

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rho = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    fov = rho < 1.02
    vignette = np.clip(1.0 - 0.55 * rho**2, 0.0, 1.0)
    frames = np.zeros((n_frames, h, w, 3), dtype=np.uint8)
    masks = np.zeros((n_frames, h, w), dtype=np.uint8)
    for t in range(n_frames):
        y0, x0 = int(round(float(oy[t]))), int(round(float(ox[t])))
        y0, x0 = min(max(y0, 0), ch - h), min(max(x0, 0), cw - w)
        img = canvas[y0 : y0 + h, x0 : x0 + w].copy()
        grow = 1.0 + 0.35 * t / max(n_frames - 1, 1)  # the scope approaches the polyp
        dy, dx = yy - (py - y0), xx - (px - x0)
        ang = np.arctan2(dy, dx)
        outline = 1.0 + 0.08 * np.sin(lobes * ang + lobe_phase)
        d = np.hypot(dy / (p_ry0 * grow), dx / (p_rx0 * grow)) / outline
        polyp = (d < 1.0) & fov
        dome = np.sqrt(np.clip(1.0 - d**2, 0.0, 1.0))  # height of a hemisphere: lit from the scope
        light = 0.75 + 0.45 * dome - 0.15 * np.clip(dy / (p_ry0 * grow), -1, 1)
        img[polyp] = (img[polyp] * polyp_tint) * light[polyp][:, None]
        img = img * vignette[..., None] + glints[y0 : y0 + h, x0 : x0 + w, None]
        img += rng.normal(0, 0.012, size=img.shape).astype(np.float32)
        img = np.clip(img, 0, 1) * fov[..., None]
        frames[t] = np.rint(img * 255).astype(np.uint8)
        masks[t] = polyp
    return SyntheticVideo(frames=frames, masks=masks, fps=25.0, modality="ES")
