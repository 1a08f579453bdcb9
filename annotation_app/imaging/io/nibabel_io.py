"""NIfTI (1 and 2), FreeSurfer MGH/MGZ and MINC (1 and 2) volumes through nibabel, the field's reader.

Probing reads the header only (shape, type, orientation) and checks the limits before a voxel is read;
then it reads the stored voxel bytes in chunks, with the file's own byte order and type, to prove that
they are all there and, for floating-point data only, that none is NaN or infinite. Loading keeps the
file's own scaling exact: integer voxels are stored as they are (shifted into int16 where needed) and
the file's slope/intercept (NIfTI scl_slope/scl_inter) become the case's rescale.

NIfTI-1 files are found by io/sitk_io.py, whose probe calls `check_nifti` here, and loaded here;
NIfTI-2, MGH/MGZ and MINC are found, probed and loaded here. ITK does not load NIfTI because it reads
NaN as 0, rescales to float32, applies its own qform/sform rule (an sform_code 2-4 that disagrees
with the qform loses; pixdim, not the sform, gives the spacing) and drops the 3D position of a 2D
image.

Orientation of NIfTI (documented in annotation_app/imaging/README.md):
1. the sform, when sform_code > 0 and its axes are orthogonal (spacing = the lengths of its columns);
2. else the qform, when qform_code > 0 (spacing = pixdim, handedness = qfac);
3. else (both codes 0, NIfTI "method 1"): spacing = pixdim, origin 0, axes along LPS, as ITK reads it.
A file whose only transform is a sheared sform is refused. MGH and MINC carry one transform each (MGH's
vox2ras, MINC's direction cosines, steps and starts); a sheared one is refused too. nibabel reports
these in RAS; the platform is LPS, so x and y are negated.
"""

from pathlib import Path

import numpy as np

from annotation_app.imaging.io import geometry
from annotation_app.imaging.io.errors import IngestError, too_large, unsupported
from annotation_app.imaging.io.model import LoadedImage, Source
from annotation_app.imaging.io.values import default_window, require_finite, to_int16, value_range
from annotation_app.imaging.limits import Limits

#: Always read here.
SUFFIXES = (".mgh", ".mgz", ".mnc")
#: Read here when the header is NIfTI-2 (or an Analyze 7.5 header, which is refused); NIfTI-1 goes
#: through io/sitk_io.py for probing.
NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr")
_CHUNK = 16 * 1024 * 1024
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _is_nifti_name(lower: str) -> bool:
    return lower.endswith(NIFTI_SUFFIXES)


def nifti_version(path: Path) -> int:
    """1 or 2 for a NIfTI header (either byte order, gzip or not), 0 for anything else (Analyze 7.5,
    garbage, unreadable)."""
    import gzip

    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as handle:
            head = handle.read(540)
    except (OSError, EOFError):
        return 0
    if len(head) < 348:
        return 0
    for order in ("<", ">"):
        size = int(np.frombuffer(head[:4], dtype=order + "i4")[0])
        if size == 348 and head[344:347] in (b"ni1", b"n+1"):
            return 1
        if size == 540 and head[4:7] in (b"ni2", b"n+2"):
            return 2
    return 0


def claims(path: Path, lower: str) -> bool:
    """Whether this module (rather than io/sitk_io.py) reads the file."""
    if lower.endswith(SUFFIXES):
        return True
    if lower.endswith(".hdr"):
        return nifti_version(path) != 1  # NIfTI-2 pairs here; Analyze (refused) here too
    if _is_nifti_name(lower):
        return nifti_version(path) == 2
    return False


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in (*NIFTI_SUFFIXES, *SUFFIXES):
        if lower.endswith(suffix):
            return Path(name[: -len(suffix)]).name
    return Path(name).name


def _format(image) -> str:
    import nibabel as nib

    if isinstance(image, nib.Nifti2Image | nib.Nifti2Pair):
        return "nifti2"
    if isinstance(image, nib.Nifti1Image | nib.Nifti1Pair):
        return "nifti"
    if isinstance(image, nib.MGHImage):
        return "mgh"
    if isinstance(image, nib.Minc2Image):
        return "minc2"
    if isinstance(image, nib.Minc1Image):
        return "minc1"
    return type(image).__name__


def _open(path: Path, name: str):
    """The nibabel image (header parsed, no voxel read), or an IngestError saying why not."""
    import nibabel as nib

    try:
        image = nib.load(str(path), mmap=False, keep_file_open=False)
    except ImportError as exc:  # MINC2 needs h5py
        raise unsupported(f"{name} cannot be read on this server ({exc})") from None
    except FileNotFoundError as exc:
        missing = Path(exc.filename or "").name or "its data file"
        raise IngestError(f"{name} needs {missing} beside it (upload both together)", code="corrupt") from None
    except Exception as exc:  # nibabel raises many types for a bad header
        reason = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
        raise IngestError(f"{name} is not a readable image file ({reason})", code="corrupt") from None
    if not isinstance(image, nib.Nifti1Pair | nib.MGHImage | nib.Minc1Image):
        if isinstance(image, nib.AnalyzeImage):
            raise unsupported(
                f"{name} is an Analyze 7.5 header, which does not say how the image is oriented; "
                "convert it to NIfTI (.nii) first"
            )
        raise unsupported(f"{name}: {type(image).__name__} files are not read")
    return image


def _shape(image, name: str, limits: Limits) -> list[int]:
    """(x, y, z) size of the volume from the header; 2D images get z = 1. Checks the limits."""
    shape = [int(s) for s in image.shape]
    dtype = image.get_data_dtype()
    if dtype.fields is not None or dtype.kind == "c":
        n = len(dtype.fields) if dtype.fields is not None else 2
        raise unsupported(f"{name} has {n} components per voxel; volumes must be scalar (one value per voxel)")
    if dtype.kind not in "iuf":
        raise unsupported(f"{name} stores voxels of type {dtype}, which is not read")
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) > 3:
        raise unsupported(
            f"{name} is a {len(shape)}D image ({'x'.join(map(str, shape))}); only 2D and 3D images are supported"
        )
    if len(shape) < 2:
        raise unsupported(f"{name} is a {len(shape)}D image; only 2D and 3D images are supported")
    if any(s > limits.max_dim for s in shape[:2]) or (len(shape) > 2 and shape[2] > limits.max_frames):
        raise too_large(
            f"{name} is {'x'.join(map(str, shape))} voxels; the limit is {limits.max_dim} per side "
            f"and {limits.max_frames} slices"
        )
    if int(np.prod(shape)) > limits.max_voxels:
        raise too_large(f"{name} has {int(np.prod(shape))} voxels; the limit is {limits.max_voxels}")
    if any(s <= 0 for s in shape):
        raise IngestError(f"{name} is empty ({'x'.join(map(str, shape))} voxels)", code="empty")
    return shape + [1] * (3 - len(shape))


# --- orientation
def _orthogonal(matrix: np.ndarray) -> bool:
    norms = np.linalg.norm(matrix, axis=0)
    if not np.all(np.isfinite(matrix)) or np.any(norms <= 0):
        return False
    unit = matrix / norms
    return bool(np.allclose(unit.T @ unit, np.eye(3), atol=1e-4))


def _nifti_affine(header, shape: list[int], name: str) -> tuple[np.ndarray, str]:
    """(RAS affine, which transform) by the precedence in the module docstring."""
    sform, scode = header.get_sform(coded=True)
    if scode > 0 and _orthogonal(_fill_singletons(sform, shape)[:3, :3]):
        return sform, "sform"
    qcode = int(header["qform_code"])  # (get_qform would already refuse a 2D image's pixdim of 0)
    if qcode > 0:
        fixed = header.copy()
        pixdim = fixed["pixdim"]
        for axis in range(3):  # a 2D image may leave the spacing of its missing axis at 0
            if shape[axis] == 1 and not pixdim[axis + 1] > 0:
                pixdim[axis + 1] = 1.0
        fixed["pixdim"] = pixdim
        try:
            return fixed.get_qform(), "qform"
        except Exception as exc:
            raise IngestError(f"{name} has an invalid qform ({exc})", code="geometry") from None
    if scode > 0:
        raise unsupported(
            f"{name}: its sform has sheared or non-orthogonal axes and it has no qform; only rotations, "
            "flips and spacing can be represented"
        )
    zooms = [float(z) for z in header.get_zooms()[:3]] + [1.0] * 3
    spacing = [zooms[axis] if zooms[axis] > 0 else 1.0 for axis in range(3)]
    return _RAS_TO_LPS @ np.diag([*spacing, 1.0]), "none"  # LPS identity, origin 0 (ITK's reading)


def _fill_singletons(affine: np.ndarray, shape: list[int]) -> np.ndarray:
    """A 2D image's affine may leave the column of its one-voxel axis zero: make it the unit normal."""
    affine = np.array(affine, dtype=np.float64)
    for axis in range(3):
        if shape[axis] == 1 and not np.linalg.norm(affine[:3, axis]) > 0:
            others = [a for a in range(3) if a != axis]
            normal = np.cross(affine[:3, others[0]], affine[:3, others[1]])
            if np.linalg.norm(normal) > 0:
                affine[:3, axis] = normal / np.linalg.norm(normal) * (1 if axis != 1 else -1)
    return affine


def ras_affine(image, shape: list[int], name: str) -> tuple[np.ndarray, str]:
    """The RAS voxel-to-world affine of the first three array axes and where it came from."""
    import nibabel as nib

    if isinstance(image, nib.Nifti1Pair):  # NIfTI-1 and -2, single file or pair
        affine, source = _nifti_affine(image.header, shape, name)
    else:
        affine, source = np.asarray(image.affine, dtype=np.float64), "header"
    return _fill_singletons(affine, shape), source


def source_geometry(image, shape: list[int], name: str) -> dict:
    """The LPS geometry (`geometry.describe` layout: size/spacing/origin (x, y, z), direction row-major)
    of the file's voxel grid, array axis 0 being x."""
    affine, _ = ras_affine(image, shape, name)
    lps = _RAS_TO_LPS @ affine
    columns = lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if not np.all(np.isfinite(lps)) or np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
        raise IngestError(f"{name} has a degenerate voxel-to-world transform", code="geometry")
    if not _orthogonal(columns):
        raise unsupported(
            f"{name}: its voxel axes are sheared or not orthogonal; only rotations, flips and spacing "
            "can be represented"
        )
    direction = columns / spacing
    return {
        "size": [int(s) for s in shape],
        "spacing": [float(s) for s in spacing],
        "origin": [float(o) for o in lps[:3, 3]],
        "direction": [float(d) for d in direction.reshape(-1)],
    }


# --- voxel data
def _data_file(image) -> str | None:
    holder = image.file_map.get("image")
    return None if holder is None else holder.filename


def _scan(image, path: Path, name: str, check_finite: bool) -> None:
    """Read the stored voxels in chunks: all present (not truncated) and, with `check_finite`, none NaN
    or infinite (floating-point data only)."""
    from nibabel.arrayproxy import ArrayProxy
    from nibabel.openers import ImageOpener

    proxy = image.dataobj
    dtype = image.get_data_dtype()  # with the file's byte order
    check_finite = check_finite and dtype.kind == "f"
    if not isinstance(proxy, ArrayProxy):  # MINC: netCDF / HDF5, read through nibabel in slabs
        _scan_minc(image, name, check_finite)
        return
    filename = _data_file(image) or str(path)
    expected = int(np.prod([int(s) for s in proxy.shape])) * dtype.itemsize
    compressed = filename.lower().endswith((".gz", ".bz2", ".zst", ".mgz"))
    if not compressed:
        have = Path(filename).stat().st_size - int(proxy.offset)
        if have < expected:
            raise _truncated(name, expected, max(have, 0))
        if not check_finite:
            return
    bad, seen, carry = 0, 0, b""
    with ImageOpener(filename, "rb") as handle:
        handle.seek(int(proxy.offset))
        while seen < expected:
            chunk = handle.read(min(_CHUNK, expected - seen))
            if not chunk:
                break
            seen += len(chunk)
            if check_finite:  # whole voxels only: a short read's split voxel waits for the next chunk
                data = carry + chunk
                usable = len(data) - len(data) % dtype.itemsize
                values = np.frombuffer(data[:usable], dtype=dtype)
                bad += int(values.size - np.count_nonzero(np.isfinite(values)))
                carry = data[usable:]
    if seen < expected:
        raise _truncated(name, expected, seen)
    if bad:
        raise IngestError(f"{name} contains {bad} NaN or infinite values", code="non_finite")


def _truncated(name: str, expected: int, have: int) -> IngestError:
    return IngestError(
        f"{name} is truncated: its header declares {expected} bytes of voxel data but the file holds {have}",
        code="corrupt",
    )


def _scan_minc(image, name: str, check_finite: bool) -> None:
    shape = [int(s) for s in image.shape]
    step = max(1, (_CHUNK // max(1, int(np.prod(shape[1:])) * 8)))
    bad = 0
    try:
        for start in range(0, shape[0], step):
            slab = np.asarray(image.dataobj[start : start + step])
            if check_finite:
                bad += int(slab.size - np.count_nonzero(np.isfinite(slab)))
    except Exception as exc:
        raise IngestError(f"{name}: its voxel data cannot be read ({exc})", code="corrupt") from None
    if bad:
        raise IngestError(f"{name} contains {bad} NaN or infinite values", code="non_finite")


def check_nifti(path: Path, name: str, limits: Limits) -> None:
    """For a NIfTI-1 file probed by SimpleITK, what `load` below will need: a size within the limits,
    an orientation the platform can represent, and, for floating-point data only, no NaN or infinite
    voxel, read with the header's byte order, type and offset (ITK would read them as 0). Integer
    voxels are not read here."""
    image = _open(path, name)
    source_geometry(image, _shape(image, name, limits), name)
    if image.get_data_dtype().kind == "f":
        _scan(image, path, name, check_finite=True)


def probe(root: Path, name: str, limits: Limits) -> Source:
    path = root / name
    image = _open(path, name)
    shape = _shape(image, name, limits)
    source_geometry(image, shape, name)  # refuses a transform that cannot be represented
    _scan(image, path, name, check_finite=True)
    return Source("nibabel", "volume", _stem(name), [name], None, {"size": shape, "format": _format(image)})


def _values(image) -> tuple[np.ndarray, float, float]:
    """(array in the file's axis order, slope, intercept) with real = array * slope + intercept; integer
    data stays integer (the file's own scaling is returned, not applied)."""
    from nibabel.arrayproxy import ArrayProxy

    proxy = image.dataobj
    if isinstance(proxy, ArrayProxy):
        raw = np.asanyarray(proxy.get_unscaled())
        slope, intercept = float(proxy.slope), float(proxy.inter)
        if raw.dtype.kind == "f" and (slope, intercept) != (1.0, 0.0):
            return raw.astype(np.float64) * slope + intercept, 1.0, 0.0
        return raw, slope, intercept
    return np.asanyarray(proxy), 1.0, 0.0  # MINC: nibabel applies its (per-slice) scaling


def load(root: Path, source: Source, modality: str | None, progress=None) -> LoadedImage:
    name = source.files[0]
    path = root / name
    image = _open(path, name)
    shape = _shape(image, name, Limits.current())
    grid = source_geometry(image, shape, name)
    raw, file_slope, file_intercept = _values(image)
    if progress:
        progress(0.5)
    raw = raw.reshape(shape)  # drops trailing one-voxel axes, gives a 2D image its z axis
    if raw.dtype.byteorder not in ("=", "|"):
        raw = raw.astype(raw.dtype.newbyteorder("="))
    require_finite(raw, name)
    array, canonical = geometry.orient_array(np.transpose(raw, (2, 1, 0)), grid)
    stored, slope, intercept = to_int16(array)
    if (file_slope, file_intercept) != (1.0, 0.0):  # real = (stored * slope + intercept) * fs + fi
        slope, intercept = slope * file_slope, intercept * file_slope + file_intercept
    meta = {
        "dtype": "int16",
        "rescale": {"slope": slope, "intercept": intercept},
        "value_range": value_range(stored, slope, intercept),
        "window": default_window(stored, slope, intercept, modality),
        "source_format": _format(image),
        "source_geometry": grid,
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
