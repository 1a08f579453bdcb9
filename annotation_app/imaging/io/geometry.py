"""Canonical orientation of volumes and the way back to the source geometry for exports.

Canonical volumes are oriented with SimpleITK's DICOMOrient(image, "LPS"): array axes (z, y, x) run
toward patient Superior, Posterior and Left, so an axial slice shows anterior at the top and the
patient's right on the image's left, as radiologists read it. Oblique acquisitions keep their
(closest-to-LPS) direction matrix. The geometry of the file as uploaded is recorded as
`source_geometry` so that label maps and DICOM SEG exports land on the original voxel grid.
"""

import numpy as np
import SimpleITK as sitk


def describe(image: sitk.Image) -> dict:
    """size/spacing/origin are (x, y, z); direction is row-major 3x3."""
    return {
        "size": [int(s) for s in image.GetSize()],
        "spacing": [float(s) for s in image.GetSpacing()],
        "origin": [float(o) for o in image.GetOrigin()],
        "direction": [float(d) for d in image.GetDirection()],
    }


def make_image(array: np.ndarray, geometry: dict) -> sitk.Image:
    """An image from a (z, y, x) array and a geometry dict as produced by `describe`."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing([float(s) for s in geometry["spacing"]])
    image.SetOrigin([float(o) for o in geometry["origin"]])
    image.SetDirection([float(d) for d in geometry["direction"]])
    return image


def to_canonical(image: sitk.Image) -> tuple[np.ndarray, dict]:
    """Reorient to LPS; return the (z, y, x) array and the canonical geometry (x, y, z order)."""
    if image.GetDimension() != 3:
        raise ValueError("to_canonical expects a 3D image")
    return orient_array(sitk.GetArrayFromImage(image), describe(image))


def orient_array(array: np.ndarray, geometry: dict) -> tuple[np.ndarray, dict]:
    """What DICOMOrient(image, "LPS") does, on a (z, y, x) numpy array: flips and an axis permutation,
    as views (no copy of a large volume; the result may be non-contiguous).

    Each image axis goes to the world axis its direction cosine is closest to, pointing the positive
    way. Axes that tie (45 degree obliques) fall back to SimpleITK."""
    direction = np.asarray(geometry["direction"], dtype=float).reshape(3, 3)
    world_axis = np.argmax(np.abs(direction), axis=0)  # for image axes x, y, z
    if sorted(world_axis.tolist()) != [0, 1, 2]:
        oriented = sitk.DICOMOrient(make_image(array, geometry), "LPS")
        return sitk.GetArrayFromImage(oriented), describe(oriented)
    size = [int(s) for s in geometry["size"]]
    origin = np.asarray(geometry["origin"], dtype=float)
    new_direction = np.zeros((3, 3))
    new_spacing, new_size = [0.0] * 3, [0] * 3
    view = array
    for axis in range(3):
        column = direction[:, axis]
        sign = 1.0 if column[world_axis[axis]] >= 0 else -1.0
        if sign < 0:  # flip: the far end becomes voxel 0
            view = np.flip(view, axis=2 - axis)
            origin = origin + column * geometry["spacing"][axis] * (size[axis] - 1)
        target = int(world_axis[axis])
        new_direction[:, target] = column * sign
        new_spacing[target] = float(geometry["spacing"][axis])
        new_size[target] = size[axis]
    # numpy axis (2 - target) of the result comes from numpy axis (2 - axis) of the input
    source_for = {2 - int(world_axis[axis]): 2 - axis for axis in range(3)}
    view = np.transpose(view, [source_for[k] for k in range(3)])
    canonical = {
        "size": new_size,
        "spacing": new_spacing,
        "origin": [float(v) for v in origin],
        "direction": [float(v) for v in new_direction.reshape(-1)],
    }
    return view, canonical


def resample_to(array: np.ndarray, from_geometry: dict, to_geometry: dict) -> np.ndarray:
    """Map a (z, y, x) label array from one voxel grid onto another (nearest neighbour, 0 outside).

    Between the canonical and the source grid this is an exact permutation/flip, since DICOMOrient only
    permutes and flips axes."""
    if _same(from_geometry, to_geometry):
        return array
    moving = make_image(array.astype(np.uint16), from_geometry)
    reference = sitk.Image([int(s) for s in to_geometry["size"]], sitk.sitkUInt16)
    reference.SetSpacing(to_geometry["spacing"])
    reference.SetOrigin(to_geometry["origin"])
    reference.SetDirection(to_geometry["direction"])
    out = sitk.Resample(moving, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(out).astype(array.dtype)


def _same(a: dict, b: dict) -> bool:
    return (
        list(a["size"]) == list(b["size"])
        and np.allclose(a["spacing"], b["spacing"], atol=1e-4)
        and np.allclose(a["origin"], b["origin"], atol=1e-3)
        and np.allclose(a["direction"], b["direction"], atol=1e-4)
    )
