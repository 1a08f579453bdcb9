"""Dice and NSD checked on shapes whose answers can be worked out by hand."""

import numpy as np
import pytest

from medsam2.training.metrics import dice_score, normalized_surface_distance


def _cube(shape, lo, hi):
    m = np.zeros(shape, dtype=bool)
    m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return m


def test_dice_of_half_overlapping_boxes_is_the_hand_computed_value():
    a = _cube((4, 10, 10), (0, 0, 0), (4, 4, 4))  # 64 voxels
    b = _cube((4, 10, 10), (0, 0, 2), (4, 4, 6))  # 64 voxels, 32 shared
    assert dice_score(a, b) == pytest.approx(2 * 32 / 128)


def test_dice_treats_two_empty_masks_as_agreement_and_one_empty_as_failure():
    empty = np.zeros((2, 3, 3), bool)
    assert dice_score(empty, empty) == 1.0
    assert dice_score(empty, _cube((2, 3, 3), (0, 0, 0), (1, 1, 1))) == 0.0


def test_nsd_is_one_for_identical_masks_and_zero_when_one_is_empty():
    a = _cube((8, 16, 16), (2, 4, 4), (6, 12, 12))
    assert normalized_surface_distance(a, a, (1.0, 1.0, 1.0), 0.0) == 1.0
    assert normalized_surface_distance(a, np.zeros_like(a), (1.0, 1.0, 1.0), 2.0) == 0.0


def test_nsd_counts_a_one_voxel_shift_as_within_a_tolerance_wider_than_the_spacing():
    a = _cube((8, 16, 16), (2, 4, 4), (6, 12, 12))
    b = np.roll(a, 1, axis=2)  # shifted by one voxel = 0.5 mm along x
    assert normalized_surface_distance(a, b, (1.0, 1.0, 0.5), 0.6) == 1.0
    # with 3 mm voxels along x the same shift is 3 mm: the moved x-faces (2 faces of 4x8
    # voxels on each mask) are beyond 2 mm, every other surface voxel is within it
    nsd = normalized_surface_distance(a, b, (1.0, 1.0, 3.0), 2.0)
    assert 0.0 < nsd < 1.0


def test_nsd_of_a_far_away_object_is_zero():
    a = _cube((4, 40, 40), (0, 0, 0), (4, 5, 5))
    b = _cube((4, 40, 40), (0, 30, 30), (4, 35, 35))
    assert normalized_surface_distance(a, b, (1.0, 1.0, 1.0), 2.0) == 0.0


def test_nsd_rejects_spacing_of_the_wrong_length():
    a = _cube((4, 4, 4), (0, 0, 0), (2, 2, 2))
    with pytest.raises(ValueError, match="spacing"):
        normalized_surface_distance(a, a, (1.0, 1.0), 2.0)
