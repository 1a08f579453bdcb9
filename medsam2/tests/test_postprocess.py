"""Mask clean-up, metrics and boxes on small hand-made masks."""

import numpy as np
import pytest

from medsam2.postprocess import (
    bounding_box,
    bounding_box_3d,
    dice,
    fill_holes_per_slice,
    iou,
    key_slice,
    largest_component_3d,
    remove_small_components,
    slice_boxes,
)


def test_largest_component_keeps_the_biggest_blob_only():
    mask = np.zeros((5, 10, 10), bool)
    mask[1:4, 1:4, 1:4] = True  # 27 voxels
    mask[0, 8, 8] = True  # 1 voxel, far away
    mask[4, 6:8, 6:8] = True  # 4 voxels
    out = largest_component_3d(mask)
    assert out.dtype == bool and out.sum() == 27
    assert out[1:4, 1:4, 1:4].all() and not out[0, 8, 8] and not out[4, 6, 6]


def test_largest_component_uses_26_connectivity_across_corners():
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = mask[2, 2, 2] = True  # touch only at corners
    mask[0, 2, 0] = mask[0, 2, 1] = False
    assert largest_component_3d(mask).sum() == 3


def test_largest_component_of_empty_mask_is_empty():
    out = largest_component_3d(np.zeros((2, 4, 4), np.uint8))
    assert out.shape == (2, 4, 4) and not out.any()


def test_largest_component_rejects_2d_input():
    with pytest.raises(ValueError, match="3 dimensions"):
        largest_component_3d(np.zeros((4, 4), bool))


def test_remove_small_components_drops_specks_below_the_threshold():
    mask = np.zeros((8, 8), bool)
    mask[0:3, 0:3] = True  # 9
    mask[6, 6] = True  # 1
    mask[5:7, 0:2] = True  # 4
    out = remove_small_components(mask, min_size=4)
    assert out.sum() == 13 and not out[6, 6]


def test_fill_holes_fills_each_slice():
    mask = np.zeros((2, 5, 5), bool)
    mask[0, 1:4, 1:4] = True
    mask[0, 2, 2] = False  # a hole
    out = fill_holes_per_slice(mask)
    assert out[0, 2, 2] and out[0].sum() == 9 and not out[1].any()


def test_dice_and_iou_match_hand_computed_values():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, 0:4] = True  # 4 pixels
    b[0, 2:4] = True  # 2 pixels, overlap 2
    b[1, 0] = True  # 3 pixels total
    assert dice(a, b) == pytest.approx(2 * 2 / (4 + 3))
    assert iou(a, b) == pytest.approx(2 / 5)
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0


def test_dice_of_two_empty_masks_is_one_and_shapes_must_match():
    assert dice(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((2, 2)), np.zeros((2, 3)))


def test_bounding_box_is_x_then_y_with_inclusive_corners():
    mask = np.zeros((10, 20), bool)
    mask[2:5, 7:12] = True  # rows 2..4, columns 7..11
    assert bounding_box(mask) == (7, 2, 11, 4)
    assert bounding_box(np.zeros((3, 3), bool)) is None


def test_bounding_box_3d_is_in_array_order():
    mask = np.zeros((6, 10, 20), bool)
    mask[1:3, 2:5, 7:12] = True
    assert bounding_box_3d(mask) == (1, 2, 7, 2, 4, 11)
    assert bounding_box_3d(np.zeros((2, 2, 2), bool)) is None


def test_slice_boxes_and_key_slice_describe_each_slice():
    mask = np.zeros((4, 10, 10), bool)
    mask[1, 2:4, 2:4] = True  # area 4
    mask[2, 1:6, 3:9] = True  # area 30
    assert slice_boxes(mask) == {1: (2, 2, 3, 3), 2: (3, 1, 8, 5)}
    assert key_slice(mask) == 2
    assert key_slice(np.zeros((2, 3, 3), bool)) is None
