"""NIfTI-1, NRRD and MetaImage (.mha/.mhd) volumes through SimpleITK.

Probing reads the header only, except for floating-point images, whose pixels are read to refuse NaN
and infinite values while the request can still answer 400. NIfTI-1 voxels and orientation are loaded
by nibabel (io/nibabel_io.py), which also scans NIfTI floating-point voxels, since ITK reads NaN as 0.
"""

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from annotation_app.imaging.io import geometry, nibabel_io
from annotation_app.imaging.io.errors import IngestError, too_large, unsupported
from annotation_app.imaging.io.model import LoadedImage, Source
from annotation_app.imaging.io.values import default_window, require_finite, to_int16, value_range
from annotation_app.imaging.limits import Limits

SUFFIXES = (".nii", ".nii.gz", ".hdr", ".nrrd", ".nhdr", ".mha", ".mhd")
_NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr")
_FLOAT_IDS = {sitk.sitkFloat32, sitk.sitkFloat64}


def matches(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return Path(name[: -len(suffix)]).name
    return Path(name).name


def image_io_for(name: str) -> str:
    """The one ITK reader a file name may use: never left to ITK's guess from the content, so that a
    file can only be read by the reader whose header rules io/volume_headers.py has checked."""
    lower = name.lower()
    if lower.endswith((".nii", ".nii.gz", ".hdr")):
        return "NiftiImageIO"
    if lower.endswith((".nrrd", ".nhdr")):
        return "NrrdImageIO"
    if lower.endswith((".mha", ".mhd")):
        return "MetaImageIO"
    raise IngestError(f"{name} is not a NIfTI, NRRD or MetaImage file", code="unsupported", status=415)


def _reader(path: Path, name: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetImageIO(image_io_for(name))
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else "unknown error"
        raise IngestError(f"{name} is not a readable image file ({first})", code="corrupt") from None
    return reader


def probe(root: Path, name: str, limits: Limits) -> Source:
    if name.lower().endswith(_NIFTI_SUFFIXES):  # what nibabel will load: orientation, finite floats
        nibabel_io.check_nifti(root / name, name, limits)
    reader = _reader(root / name, name)
    size = list(reader.GetSize())
    dim = reader.GetDimension()
    if dim == 4 and size[3] == 1:
        size = size[:3]
    elif dim > 3:
        raise unsupported(
            f"{name} is a {dim}D image ({'x'.join(map(str, size))}); only 2D and 3D images are supported"
        )
    if reader.GetNumberOfComponents() != 1:
        raise unsupported(
            f"{name} has {reader.GetNumberOfComponents()} components per voxel; "
            "volumes must be scalar (one value per voxel)"
        )
    if any(s > limits.max_dim for s in size[:2]) or (len(size) > 2 and size[2] > limits.max_frames):
        raise too_large(
            f"{name} is {'x'.join(map(str, size))} voxels; the limit is {limits.max_dim} per side "
            f"and {limits.max_frames} slices"
        )
    if int(np.prod(size)) > limits.max_voxels:
        raise too_large(f"{name} has {int(np.prod(size))} voxels; the limit is {limits.max_voxels}")
    if any(s == 0 for s in size):
        raise IngestError(f"{name} is empty ({'x'.join(map(str, size))} voxels)", code="empty")
    if reader.GetPixelID() in _FLOAT_IDS and not name.lower().endswith(_NIFTI_SUFFIXES):
        require_finite(_read(root / name, name), name)
    return Source("sitk", "volume", _stem(name), [name], None, {"size": size})


def _read(path: Path, name: str) -> np.ndarray:
    return sitk.GetArrayFromImage(_read_image(path, name))


def _read_image(path: Path, name: str) -> sitk.Image:
    try:
        image = sitk.ReadImage(str(path), imageIO=image_io_for(name))
    except RuntimeError as exc:
        raise IngestError(f"{name} cannot be read ({str(exc).strip()[-200:]})", code="corrupt") from None
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    return image


def load(root: Path, source: Source, modality: str | None, progress=None) -> LoadedImage:
    name = source.files[0]
    if name.lower().endswith(_NIFTI_SUFFIXES):
        return nibabel_io.load(root, source, modality, progress)
    image = _read_image(root / name, name)
    if progress:
        progress(0.5)
    source_geometry = geometry.describe(image)
    array, canonical = geometry.to_canonical(image)
    require_finite(array, name)
    stored, slope, intercept = to_int16(array)
    meta = {
        "dtype": "int16",
        "rescale": {"slope": slope, "intercept": intercept},
        "value_range": value_range(stored, slope, intercept),
        "window": default_window(stored, slope, intercept, modality),
        "source_format": "nifti"
        if name.lower().endswith((".nii", ".nii.gz"))
        else Path(name).suffix.lstrip("."),
        "source_geometry": source_geometry,
    }
    return LoadedImage(
        stored,
        "volume",
        list(reversed(canonical["spacing"])),
        canonical["origin"],
        canonical["direction"],
        modality=modality,
        meta=meta,
    )
