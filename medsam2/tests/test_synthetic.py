"""The synthetic generator: determinism, realistic intensities, lesion sizes and contrast, moving objects."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from medsam2.synthetic import (
    make_ct_volume,
    make_echo_video,
    make_endoscopy_video,
    make_lesion_training_pairs,
    make_mr_volume,
)

SMALL = (24, 128, 128)
SMALL_SPACING = (5.0, 1.6, 1.6)  # the default field of view at half the voxels


@pytest.fixture(scope="module")
def ct():
    return make_ct_volume(seed=7)


def _ring(mask, inner=2, outer=4):
    """In-plane shell around a mask, `inner`..`outer` voxels away."""
    st = np.ones((1, 3, 3), bool)
    return ndimage.binary_dilation(mask, st, iterations=outer) & ~ndimage.binary_dilation(mask, st, iterations=inner)


def test_same_seed_gives_identical_volumes_and_other_seeds_differ():
    a = make_ct_volume(3, shape=SMALL, spacing=SMALL_SPACING)
    b = make_ct_volume(3, shape=SMALL, spacing=SMALL_SPACING)
    c = make_ct_volume(4, shape=SMALL, spacing=SMALL_SPACING)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.lesions == b.lesions
    assert not np.array_equal(a.image, c.image)


def test_ct_volume_has_the_requested_shape_types_and_lesion_ids(ct):
    assert ct.image.shape == (48, 256, 256) and ct.image.dtype == np.int16
    assert ct.labels.shape == ct.image.shape and ct.labels.dtype == np.uint8
    assert ct.spacing == (2.5, 0.8, 0.8) and ct.modality == "CT"
    assert sorted(np.unique(ct.labels).tolist()) == [0, 1, 2, 3]
    assert [lesion.label for lesion in ct.lesions] == [1, 2, 3]


def test_ct_intensities_are_realistic_hounsfield_units(ct):
    img = ct.image.astype(np.float64)
    corner = img[:, :6, :6]  # outside the body
    assert abs(corner.mean() - (-1000)) < 5
    assert img.min() >= -1024 and img.max() < 1000
    # Bone: the spine reaches cortical values; soft tissue sits between -150 and 150.
    assert img.max() > 550
    centre_strip = img[:, 118:138, :]  # a band through the abdomen
    body = centre_strip[centre_strip > -500]
    assert -150 < np.median(body) < 100
    # Noise: the std of the difference of neighbouring air voxels / sqrt(2) is the noise level (10..15 HU).
    air = img[:, :20, :20]
    noise = np.std(np.diff(air, axis=2)) / np.sqrt(2)
    assert 8 < noise < 16


def test_lesions_have_their_stated_size_and_contrast(ct):
    img = ct.image.astype(np.float64)
    for lesion in ct.lesions:
        mask = ct.labels == lesion.label
        assert mask.sum() == lesion.n_voxels > 0
        assert 4.0 <= lesion.radius_mm <= 31.5
        equivalent_radius = (3 * mask.sum() * np.prod(ct.spacing) / (4 * np.pi)) ** (1 / 3)
        assert 0.75 < equivalent_radius / lesion.radius_mm < 1.3
        assert 30 <= abs(lesion.contrast) <= 80
        assert lesion.kind == ("hypodense" if lesion.contrast < 0 else "hyperdense")
        # The image agrees with the mask: inside minus the surrounding organ is the stated contrast.
        core = ndimage.binary_erosion(mask, np.ones((1, 3, 3), bool), iterations=1)
        ring = _ring(mask) & (ct.labels == 0)
        measured = img[core].mean() - np.median(img[ring])
        assert abs(measured - lesion.contrast) < 15


def test_lesion_centres_lie_inside_their_masks_and_the_volume(ct):
    for lesion in ct.lesions:
        z, y, x = (int(round(c)) for c in lesion.center)
        assert 0 <= z < 48 and 0 <= y < 256 and 0 <= x < 256
        near = ct.labels[max(z - 1, 0) : z + 2, max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3]
        assert (near == lesion.label).any()


def test_key_slice_and_box_describe_the_lesion(ct):
    lesion = ct.lesions[0]
    k = ct.key_slice(lesion.label)
    areas = (ct.labels == lesion.label).sum(axis=(1, 2))
    assert areas[k] == areas.max()
    x0, y0, x1, y1 = ct.box(lesion.label)
    ys, xs = np.nonzero(ct.labels[k] == lesion.label)
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max(), ys.max())


def test_lesion_sizes_span_small_to_large_over_seeds():
    radii = [lesion.radius_mm for s in range(5) for lesion in make_ct_volume(s, SMALL, 3, SMALL_SPACING).lesions]
    assert min(radii) < 10 and max(radii) > 14


def test_zero_lesions_gives_an_empty_label_map():
    vol = make_ct_volume(1, shape=SMALL, n_lesions=0, spacing=SMALL_SPACING)
    assert vol.lesions == [] and int(vol.labels.max()) == 0


def test_mr_volume_is_uint16_with_bias_field_and_lesion_contrast():
    mr = make_mr_volume(5, shape=SMALL, spacing=SMALL_SPACING)
    assert mr.image.dtype == np.uint16 and mr.modality == "MR"
    assert 0 <= int(mr.image.min()) and int(mr.image.max()) < 1400
    assert np.median(mr.image[:, :6, :6]) < 60  # background is dark
    img = mr.image.astype(np.float64)
    for lesion in mr.lesions:
        mask = mr.labels == lesion.label
        ring = _ring(mask) & (mr.labels == 0)
        measured = img[mask].mean() - np.median(img[ring])
        assert np.sign(measured) == np.sign(lesion.contrast)
        if lesion.organ == "liver":  # small organs: the ring also catches fat, so only the sign is sure
            assert abs(measured) > 0.5 * abs(lesion.contrast)
        assert lesion.kind == ("hypointense" if lesion.contrast < 0 else "hyperintense")


def test_training_pairs_are_distinct_deterministic_cases_with_lesions():
    pairs = make_lesion_training_pairs(seed=11, n_cases=3, shape=(16, 64, 64))
    again = make_lesion_training_pairs(seed=11, n_cases=3, shape=(16, 64, 64))
    assert len(pairs) == 3
    for (img, lab), (img2, lab2) in zip(pairs, again, strict=True):
        assert img.shape == lab.shape == (16, 64, 64)
        assert img.dtype == np.int16 and lab.dtype == np.uint8
        assert int(lab.max()) == 3
        np.testing.assert_array_equal(img, img2)
        np.testing.assert_array_equal(lab, lab2)
    assert not np.array_equal(pairs[0][0], pairs[1][0])


def test_echo_video_has_a_dark_beating_left_ventricle():
    video = make_echo_video(seed=2, n_frames=32, size=(160, 160))
    assert video.frames.shape == (32, 160, 160) and video.frames.dtype == np.uint8
    assert video.masks.shape == (32, 160, 160) and set(np.unique(video.masks)) == {0, 1}
    areas = video.masks.sum(axis=(1, 2)).astype(float)
    assert areas.min() / areas.max() < 0.8  # contraction
    # Periodic (period 18..24 frames): over 32 frames the area turns from shrinking to growing and back
    # at least twice.
    turns = np.count_nonzero(np.diff(np.sign(np.diff(areas))) != 0)
    assert turns >= 2
    # The cavity is dark compared with the surrounding tissue inside the sector.
    for t in (0, 16):
        frame, mask = video.frames[t].astype(float), video.masks[t].astype(bool)
        around = ndimage.binary_dilation(mask, iterations=12) & ~ndimage.binary_dilation(mask, iterations=2)
        assert frame[mask].mean() < 0.4 * frame[around].mean()


def test_endoscopy_video_has_a_moving_reddish_polyp():
    video = make_endoscopy_video(seed=4, n_frames=24, size=(128, 128))
    assert video.frames.shape == (24, 128, 128, 3) and video.frames.dtype == np.uint8
    assert video.masks.shape == (24, 128, 128) and video.modality == "ES"
    centroids = np.array([np.argwhere(m).mean(axis=0) for m in video.masks])
    assert np.linalg.norm(centroids[-1] - centroids[0]) > 5  # the object moves
    assert video.masks[-1].sum() > video.masks[0].sum()  # and grows as the scope approaches
    frame, mask = video.frames[0].astype(float), video.masks[0].astype(bool)
    around = ndimage.binary_dilation(mask, iterations=8) & ~mask
    ratio_in = frame[mask, 0].mean() / frame[mask, 1].mean()
    ratio_out = frame[around, 0].mean() / frame[around, 1].mean()
    assert ratio_in > ratio_out * 1.1  # redder than the mucosa around it
    assert video.frames[0, 0, 0].tolist() == [0, 0, 0]  # outside the circular field of view


def test_video_generators_are_deterministic_by_seed():
    a, b = make_echo_video(9, n_frames=4, size=(64, 64)), make_echo_video(9, n_frames=4, size=(64, 64))
    np.testing.assert_array_equal(a.frames, b.frames)
    c, d = (
        make_endoscopy_video(9, n_frames=4, size=(64, 64)),
        make_endoscopy_video(9, n_frames=4, size=(64, 64)),
    )
    np.testing.assert_array_equal(c.frames, d.frames)
    np.testing.assert_array_equal(c.masks, d.masks)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="shape"):
        make_ct_volume(0, shape=(2, 64, 64))
    with pytest.raises(ValueError, match="n_lesions"):
        make_ct_volume(0, shape=SMALL, n_lesions=300)
    with pytest.raises(ValueError, match="n_frames"):
        make_echo_video(0, n_frames=0)
    with pytest.raises(ValueError, match="size"):
        make_endoscopy_video(0, size=(8, 8))


def test_importing_the_generator_does_not_import_torch():
    code = "import sys, medsam2.synthetic; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
