"""Canonical orientation: the numpy reorientation agrees with SimpleITK's DICOMOrient("LPS"), and the
way back to the source grid is exact."""

import itertools

import numpy as np
import pytest
import SimpleITK as sitk

from annotation_app.imaging.io import geometry

AXIS_LAYOUTS = [
    (perm, signs)
    for perm in itertools.permutations(range(3))
    for signs in itertools.product((1, -1), repeat=3)
]


def _grid(perm, signs, tilt=0.1) -> dict:
    direction = np.zeros((3, 3))
    for axis in range(3):
        direction[perm[axis], axis] = signs[axis]
    rotation = np.eye(3)
    rotation[:2, :2] = [[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]]
    return {
        "size": [5, 4, 3],
        "spacing": [0.7, 0.8, 2.5],
        "origin": [10.0, -5.0, 3.0],
        "direction": (rotation @ direction).reshape(-1).tolist(),
    }


@pytest.mark.parametrize("perm, signs", AXIS_LAYOUTS)
def test_orient_array_matches_dicomorient_for_every_axis_layout(perm, signs):
    grid = _grid(perm, signs)
    array = np.random.default_rng(0).integers(0, 1000, size=(3, 4, 5)).astype(np.int16)
    mine, canonical = geometry.orient_array(array, grid)
    reference = sitk.DICOMOrient(geometry.make_image(array, grid), "LPS")
    np.testing.assert_array_equal(np.asarray(mine), sitk.GetArrayFromImage(reference))
    expected = geometry.describe(reference)
    assert canonical["size"] == expected["size"]
    for key in ("spacing", "origin", "direction"):
        assert canonical[key] == pytest.approx(expected[key], abs=1e-9)


@pytest.mark.parametrize("perm, signs", AXIS_LAYOUTS[::5])
def test_labels_go_back_to_the_source_grid_exactly(perm, signs):
    grid = _grid(perm, signs, tilt=0.0)
    labels = np.random.default_rng(1).integers(0, 3, size=(3, 4, 5)).astype(np.uint16)
    canonical_labels, canonical = geometry.orient_array(labels, grid)
    back = geometry.resample_to(np.ascontiguousarray(canonical_labels), canonical, grid)
    np.testing.assert_array_equal(back, labels)


def test_a_45_degree_oblique_falls_back_to_simpleitk():
    c = np.sqrt(0.5)
    grid = {
        "size": [5, 4, 3],
        "spacing": [1.0, 1.0, 1.0],
        "origin": [0.0, 0.0, 0.0],
        "direction": [c, -c, 0.0, c, c, 0.0, 0.0, 0.0, 1.0],
    }
    array = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    mine, canonical = geometry.orient_array(array, grid)
    reference = sitk.DICOMOrient(geometry.make_image(array, grid), "LPS")
    np.testing.assert_array_equal(mine, sitk.GetArrayFromImage(reference))
    assert canonical == geometry.describe(reference)
