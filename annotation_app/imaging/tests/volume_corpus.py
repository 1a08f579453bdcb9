"""A corpus of valid volume files, generated per test: every byte order, data type, scaling, transform
and container that NIfTI-1/-2, NRRD, MetaImage, MGH/MGZ and MINC 1/2 allow and that real files use.

Each variant writes its file(s) from a known truth (voxel values in the file's own axis order and the
voxel-to-LPS affine) and names the trusted reader that must read exactly that truth back:

- nibabel for NIfTI, MGH and MINC (values after the file's scaling; its sform/qform precedence);
- pynrrd for NRRD (values; geometry from `space`, `space directions`, `space origin`, `spacings`);
- SimpleITK for MetaImage (ITK's own format) and for NIfTI with neither transform code, whose reading
  (origin 0, axes along LPS) is the one the platform documents.

Headers are written directly (NIfTI, MetaImage), with pynrrd (NRRD), nibabel (MGH), netCDF (MINC1)
or h5py (MINC2), so every field is what the variant says. Arrays are indexed (i, j, k) like the file:
i varies fastest on disk.
"""

import gzip
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SHAPE = (5, 6, 4)  # i, j, k: all different, to catch any mix-up of axes
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Built:
    files: list[Path]  # uploaded as they are (several files: one multipart request)
    values: np.ndarray  # real values (after the file's scaling), float64, axes (i, j, k)
    affine: np.ndarray  # voxel index (i, j, k) -> LPS mm
    reader: str  # "nibabel" | "nibabel-qform" | "pynrrd" | "sitk"
    exact: bool = True  # False: the platform's int16 storage quantises (float data over a wide range)
    zip_folder: str | None = None  # upload the files as one zip, inside this folder


@dataclass
class Variant:
    id: str
    build: Callable[[Path], Built]
    notes: str = ""
    marks: list = field(default_factory=list)


# --- values and transforms


def values_for(dtype, shape=SHAPE, seed=0, wide=False) -> np.ndarray:
    """Values that use much of the type's range (both signs where signed), so a byte-order mistake
    changes them; floats are fractional unless the dtype name ends with ':int'."""
    rng = np.random.default_rng(seed)
    name = str(dtype)
    integral_float = name.endswith(":int")
    dt = np.dtype(name.split(":")[0])
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = int(info.min), int(info.max)
        if dt.itemsize >= 4:  # int32: a span under 65536 values (exact in int16 storage) unless wide
            lo, hi = (-2_000_000_000, 2_000_000_000) if wide else (100_000, 140_000)
        out = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
        out.flat[0], out.flat[-1] = lo, hi
        return out.astype(dt)
    if integral_float:
        return rng.integers(-1024, 3071, size=shape, endpoint=True).astype(dt)
    out = (rng.normal(0.0, 1000.0, size=shape) * (1e6 if wide else 1.0)).astype(dt)
    out.flat[1] = np.frombuffer(_BYTE_ORDER_TRAP[dt.itemsize], dtype=">" + dt.str[1:])[0]
    return out


#: ordinary numbers (1003.99.., 1000.00..) whose bytes, read in the other byte order, are NaN
_BYTE_ORDER_TRAP = {4: b"\x44\x7a\xff\x7f", 8: b"\x40\x8f\x40\x00\x00\x00\xf8\x7f"}


def rotation(ax: float = 0.0, ay: float = 0.0, az: float = 0.0) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def affine(spacing=(0.9, 0.8, 2.5), origin=(-12.5, 30.0, 7.25), rot=None, flip=(1, 1, 1)) -> np.ndarray:
    """A voxel-to-world affine (whatever world the caller means): rotation x flips x spacing."""
    out = np.eye(4)
    r = np.eye(3) if rot is None else np.asarray(rot)
    out[:3, :3] = r @ np.diag(np.asarray(flip, float) * np.asarray(spacing, float))
    out[:3, 3] = origin
    return out


OBLIQUE = rotation(0.35, -0.2, 0.5)


# --- NIfTI (written field by field)


def write_nifti(
    path: Path,
    raw: np.ndarray,
    *,
    qform=None,
    sform=None,
    qcode=1,
    scode=1,
    endian="<",
    slope=None,
    inter=None,
    pixdim=None,
    version=1,
) -> list[Path]:
    """Write a NIfTI file (.nii, .nii.gz or a .hdr/.img pair) with exactly these fields; RAS affines."""
    import nibabel as nib

    header = (nib.Nifti1Header if version == 1 else nib.Nifti2Header)(endianness=endian)
    header.set_data_dtype(raw.dtype)
    header.set_data_shape(raw.shape)
    header.set_qform(qform, int(qcode) if qform is not None else 0)
    header.set_sform(sform, int(scode) if sform is not None else 0)
    if qform is None and sform is not None and pixdim is None:  # as writers do: pixdim = the sform's zooms
        pixdim = np.linalg.norm(np.asarray(sform)[:3, :3], axis=0)[: raw.ndim]
    if pixdim is not None:
        header["pixdim"][1 : 1 + len(pixdim)] = pixdim
    if slope is not None:
        header["scl_slope"], header["scl_inter"] = slope, inter or 0.0
    pair = path.name.endswith(".hdr")
    header["magic"] = (b"ni1" if pair else b"n+1") if version == 1 else (b"ni2" if pair else b"n+2")
    data = raw.astype(raw.dtype.newbyteorder(endian)).tobytes(order="F")
    if pair:
        header.set_data_offset(0)
        path.write_bytes(header.binaryblock)
        image = path.with_suffix(".img")
        image.write_bytes(data)
        return [path, image]
    offset = 352 if version == 1 else 544
    header.set_data_offset(offset)
    blob = header.binaryblock + b"\0" * (offset - len(header.binaryblock)) + data
    (gzip.open if path.name.endswith(".gz") else open)(path, "wb").write(blob)
    return [path]


def nifti_variant(
    name="scan.nii",
    dtype="int16",
    *,
    endian="<",
    slope=None,
    inter=None,
    qform="A",
    sform="A",
    qcode=1,
    scode=1,
    pixdim=None,
    version=1,
    shape=SHAPE,
    reader="nibabel",
    wide=False,
    zip_folder=None,
):
    """A builder of one NIfTI variant. qform/sform: "A" (the truth), an affine (RAS), or None."""

    def build(folder: Path) -> Built:
        raw = values_for(dtype, shape, wide=wide)
        truth_ras = affine() if not isinstance(qform, np.ndarray) else qform
        if isinstance(sform, np.ndarray) and scode > 0 and _orthogonal(sform):
            truth_ras = sform
        q = truth_ras if isinstance(qform, str) else qform
        s = truth_ras if isinstance(sform, str) else sform
        truth_lps = RAS_TO_LPS @ truth_ras
        if q is None and s is None:  # NIfTI method 1 as ITK reads it: LPS axes, origin 0
            truth_lps = np.diag([*(pixdim or (1.0, 1.0, 1.0)), 1.0])
        files = write_nifti(
            folder / name,
            raw,
            qform=q,
            sform=s,
            qcode=qcode,
            scode=scode,
            endian=endian,
            slope=slope,
            inter=inter,
            pixdim=pixdim,
            version=version,
        )
        real = raw.astype(np.float64)
        if slope not in (None, 0.0) and np.isfinite(slope):
            real = real * float(np.float32(slope)) + float(np.float32(inter or 0.0))
        fractional = np.dtype(str(dtype).split(":")[0]).kind == "f" and not str(dtype).endswith(":int")
        return Built(
            files,
            _as3d(real),
            truth_lps,
            reader,
            exact=not (fractional or wide),
            zip_folder=zip_folder,
        )

    return build


def _orthogonal(a: np.ndarray) -> bool:
    m = a[:3, :3] / np.linalg.norm(a[:3, :3], axis=0)
    return bool(np.allclose(m.T @ m, np.eye(3), atol=1e-4))


def _as3d(values: np.ndarray) -> np.ndarray:
    """(i, j, k): a 2D image gets k = 1, a 4D image with one volume loses its fourth axis."""
    return values.reshape((values.shape + (1, 1))[:3])


# --- NRRD (pynrrd)


def nrrd_variant(
    name="scan.nrrd",
    dtype="int16",
    *,
    endian="<",
    encoding="raw",
    space="left-posterior-superior",
    directions=True,
    rot=None,
    shape=SHAPE,
    detached=False,
    zip_folder=None,
):
    def build(folder: Path) -> Built:
        import nrrd

        raw = values_for(dtype, shape, seed=1)
        data = raw.astype(raw.dtype.newbyteorder(endian))
        ndim = len(shape)
        spacing = (0.9, 0.8, 2.5)[:ndim]
        header: dict = {"encoding": encoding}
        truth = np.eye(4)
        if directions and ndim == 3:
            a = affine(spacing=spacing, rot=rot)  # in the NRRD space
            header["space"] = space
            header["space directions"] = a[:3, :3].T  # one row per axis
            header["space origin"] = a[:3, 3]
            truth = RAS_TO_LPS @ a if space.startswith("right-anterior") else a
        elif directions:  # 2D: a two-dimensional space
            a = affine(spacing=(*spacing, 1.0), rot=rotation(az=0.4))
            header["space dimension"] = 2
            header["space directions"] = a[:2, :2].T
            header["space origin"] = a[:2, 3]
            truth[:2, :2], truth[:2, 3] = a[:2, :2], a[:2, 3]
        else:
            header["spacings"] = list(spacing)
            truth = np.diag([*spacing, *([1.0] * (4 - ndim))])
        path = folder / name
        nrrd.write(str(path), data, header, detached_header=detached, index_order="F")
        files = sorted(p for p in folder.iterdir() if p.is_file())
        fractional = np.dtype(dtype).kind == "f"
        return Built(files, _as3d(raw.astype(np.float64)), truth, "pynrrd", not fractional, zip_folder)

    return build


# --- MetaImage (written field by field)

_MET = {
    "int8": "MET_CHAR",
    "uint8": "MET_UCHAR",
    "int16": "MET_SHORT",
    "uint16": "MET_USHORT",
    "int32": "MET_INT",
    "float32": "MET_FLOAT",
    "float64": "MET_DOUBLE",
}


def write_metaimage(path: Path, raw: np.ndarray, lps: np.ndarray, *, msb=False, compressed=False) -> list[Path]:
    """.mha (voxels after the header) or .mhd (+ .raw / .zraw beside it); `lps` index -> LPS mm."""
    ndim = raw.ndim
    spacing = np.linalg.norm(lps[:ndim, :ndim], axis=0)
    direction = lps[:ndim, :ndim] / spacing
    data = raw.astype(raw.dtype.newbyteorder(">" if msb else "<")).tobytes(order="F")
    if compressed:
        data = zlib.compress(data)
    detached = path.suffix.lower() == ".mhd"
    data_name = path.stem + (".zraw" if compressed else ".raw")
    lines = [
        "ObjectType = Image",
        f"NDims = {ndim}",
        "BinaryData = True",
        f"BinaryDataByteOrderMSB = {msb}",
        f"CompressedData = {compressed}",
        *([f"CompressedDataSize = {len(data)}"] if compressed else []),
        "TransformMatrix = " + " ".join(repr(float(v)) for v in direction.T.reshape(-1)),  # axis by axis
        "Offset = " + " ".join(repr(float(v)) for v in lps[:ndim, 3]),
        "ElementSpacing = " + " ".join(repr(float(v)) for v in spacing),
        "DimSize = " + " ".join(str(s) for s in raw.shape),
        f"ElementType = {_MET[raw.dtype.name]}",
        f"ElementDataFile = {data_name if detached else 'LOCAL'}",
    ]
    text = ("\n".join(lines) + "\n").encode()
    if detached:
        path.write_bytes(text)
        (path.parent / data_name).write_bytes(data)
        return [path, path.parent / data_name]
    path.write_bytes(text + data)
    return [path]


def metaimage_variant(
    name="scan.mha", dtype="int16", *, msb=False, compressed=False, rot=None, shape=SHAPE, zip_folder=None
):
    def build(folder: Path) -> Built:
        raw = values_for(dtype, shape, seed=2)
        lps = affine(rot=rot)
        if len(shape) == 2:
            lps[:3, 2], lps[2, :3], lps[2, 3] = [0, 0, 1], [0, 0, 1], 0.0
            lps[:2, :2] = affine(spacing=(0.9, 0.8, 1.0), rot=rotation(az=0.4))[:2, :2]
        files = write_metaimage(folder / name, raw, lps, msb=msb, compressed=compressed)
        fractional = np.dtype(dtype).kind == "f"
        return Built(files, _as3d(raw.astype(np.float64)), lps, "sitk", not fractional, zip_folder)

    return build


# --- MGH / MGZ (nibabel writes them; always big-endian)


def mgh_variant(name="brain.mgz", dtype="int16", *, rot=None):
    def build(folder: Path) -> Built:
        import nibabel as nib

        raw = values_for(dtype, seed=3)
        ras = affine(spacing=(1.0, 1.2, 0.9), rot=rot)
        nib.save(nib.MGHImage(raw, ras), str(folder / name))
        fractional = np.dtype(dtype).kind == "f"
        return Built([folder / name], raw.astype(np.float64), RAS_TO_LPS @ ras, "nibabel", not fractional)

    return build


# --- MINC 1 (netCDF) and MINC 2 (HDF5)

_MINC_DIMS = ("zspace", "yspace", "xspace")  # file order: axis 0 is zspace


def _minc_geometry(rot, steps):
    """(starts, direction cosines) per dimension in file order, and the RAS affine nibabel gives."""
    r = np.eye(3) if rot is None else rot
    cosines = {"xspace": r[:, 0], "yspace": r[:, 1], "zspace": r[:, 2]}
    starts = {"xspace": -40.0, "yspace": 25.5, "zspace": -7.0}
    ras = np.eye(4)
    for axis, dim in enumerate(_MINC_DIMS):
        ras[:3, axis] = cosines[dim] * steps[dim]
    ras[:3, 3] = sum(cosines[d] * starts[d] for d in _MINC_DIMS)
    return starts, cosines, ras


def _minc_values(dtype, scaled: str, seed: int):
    """(raw, image-min, image-max, valid range, real values): scaled = "none" | "slices" | "float"."""
    raw = values_for(dtype, seed=seed)
    dt = raw.dtype
    if dt.kind == "f":
        return raw, None, None, None, raw.astype(np.float64)
    info = np.iinfo(dt)
    valid = (float(info.min), float(info.max))
    if scaled == "none":  # image range = valid range: real = raw
        imin = np.full(raw.shape[0], valid[0])
        imax = np.full(raw.shape[0], valid[1])
    else:  # per-slice real ranges, as MINC tools write them
        imin = -100.0 - 10.0 * np.arange(raw.shape[0])
        imax = 400.0 + 50.0 * np.arange(raw.shape[0])
    real = (raw.astype(np.float64) - valid[0]) / (valid[1] - valid[0])
    real = real * (imax - imin)[:, None, None] + imin[:, None, None]
    return raw, imin, imax, valid, real


def minc1_variant(name="scan.mnc", dtype="int16", *, scaled="none", rot=None, negative_step=False):
    def build(folder: Path) -> Built:
        from nibabel.externals.netcdf import netcdf_file

        steps = {"xspace": 0.9, "yspace": 0.8, "zspace": -2.5 if negative_step else 2.5}
        starts, cosines, ras = _minc_geometry(rot, steps)
        raw, imin, imax, valid, real = _minc_values(dtype, scaled, seed=4)
        shape = raw.shape  # file order (z, y, x) sizes, whatever the names
        f = netcdf_file(str(folder / name), "w")
        for dim, n in zip(_MINC_DIMS, shape, strict=True):
            f.createDimension(dim, n)
            var = f.createVariable(dim, "d", ())
            var.step, var.start = steps[dim], starts[dim]
            var.direction_cosines = np.asarray(cosines[dim], dtype=np.float64)
            var.spacing, var.alignment = b"regular__", b"centre"
        code = {"i": {1: "b", 2: "h", 4: "i"}, "u": {1: "b", 2: "h", 4: "i"}, "f": {4: "f", 8: "d"}}
        typecode = code[raw.dtype.kind][raw.dtype.itemsize]
        image = f.createVariable("image", typecode, _MINC_DIMS)
        image[:] = raw.view(np.dtype(typecode)) if raw.dtype.kind == "u" else raw
        if raw.dtype.kind != "f":
            image.signtype = b"unsigned" if raw.dtype.kind == "u" else b"signed__"
            image.valid_range = np.asarray(valid, dtype=np.float64)
        low = f.createVariable("image-min", "d", ("zspace",))
        high = f.createVariable("image-max", "d", ("zspace",))
        low[:] = imin if imin is not None else np.zeros(shape[0])
        high[:] = imax if imax is not None else np.ones(shape[0])
        f.close()
        return Built([folder / name], real, RAS_TO_LPS @ ras, "nibabel", scaled == "none" and raw.dtype.kind != "f")

    return build


def minc2_variant(name="scan.mnc", dtype="int16", *, scaled="none", rot=None, big_endian=False):
    def build(folder: Path) -> Built:
        import h5py

        steps = {"xspace": 1.1, "yspace": 0.7, "zspace": 3.0}
        starts, cosines, ras = _minc_geometry(rot, steps)
        raw, imin, imax, valid, real = _minc_values(dtype, scaled, seed=5)
        with h5py.File(folder / name, "w") as f:
            root = f.create_group("minc-2.0")
            root.attrs["minc_version"] = np.bytes_(b"2.1.0")
            dims = root.create_group("dimensions")
            for dim, n in zip(_MINC_DIMS, raw.shape, strict=True):
                d = dims.create_dataset(dim, data=np.int32(0))
                d.attrs["length"] = np.uint32(n)
                d.attrs["step"], d.attrs["start"] = np.float64(steps[dim]), np.float64(starts[dim])
                d.attrs["direction_cosines"] = np.asarray(cosines[dim], dtype=np.float64)
                d.attrs["spacing"], d.attrs["alignment"] = np.bytes_(b"regular__"), np.bytes_(b"centre")
            group = root.create_group("image").create_group("0")
            stored = raw.astype(raw.dtype.newbyteorder(">" if big_endian else "<"))
            image = group.create_dataset("image", data=stored)
            image.attrs["dimorder"] = np.bytes_(",".join(_MINC_DIMS).encode())
            if raw.dtype.kind != "f":
                image.attrs["valid_range"] = np.asarray(valid, dtype=np.float64)
            for key, value in (("image-min", imin), ("image-max", imax)):
                data = value if value is not None else np.zeros(raw.shape[0])
                scale = group.create_dataset(key, data=np.asarray(data, dtype=np.float64))
                scale.attrs["dimorder"] = np.bytes_(b"zspace")
        return Built([folder / name], real, RAS_TO_LPS @ ras, "nibabel", scaled == "none" and raw.dtype.kind != "f")

    return build


# --- trusted readers


def read_trusted(built: Built) -> tuple[np.ndarray, np.ndarray]:
    """(real values (i, j, k), voxel -> LPS affine) of the variant's main file by its trusted reader."""
    path = built.files[0]
    if built.reader.startswith("nibabel"):
        import nibabel as nib
        from nibabel.arrayproxy import ArrayProxy

        image = nib.load(str(path))
        if isinstance(image.dataobj, ArrayProxy):  # the file's own scaling, in float64
            proxy = image.dataobj
            values = np.asanyarray(proxy.get_unscaled()).astype(np.float64) * proxy.slope + proxy.inter
        else:
            values = np.asanyarray(image.dataobj, dtype=np.float64)
        ras = image.header.get_qform() if built.reader == "nibabel-qform" else image.affine
        return _as3d(values), RAS_TO_LPS @ ras  # nibabel's affine is 4x4 for a 2D image too
    if built.reader == "pynrrd":
        import nrrd

        data, header = nrrd.read(str(path), index_order="F")
        ndim = data.ndim
        out = np.eye(4)
        if "space directions" in header:
            out[:ndim, :ndim] = np.asarray(header["space directions"], dtype=float).T
            out[:ndim, 3] = header.get("space origin", np.zeros(ndim))
            if header.get("space", "").startswith("right-anterior"):
                out = RAS_TO_LPS @ out
        else:
            out[:ndim, :ndim] = np.diag(header.get("spacings", np.ones(ndim)))
        return _as3d(data.astype(np.float64)), out
    if built.reader == "sitk":
        import SimpleITK as sitk

        image = sitk.ReadImage(str(path))
        ndim = image.GetDimension()
        values = sitk.GetArrayFromImage(image).astype(np.float64).transpose(tuple(reversed(range(ndim))))
        out = np.eye(4)
        direction = np.asarray(image.GetDirection()).reshape(ndim, ndim)
        out[:ndim, :ndim] = direction @ np.diag(image.GetSpacing())
        out[:ndim, 3] = image.GetOrigin()
        return _as3d(values), out
    raise ValueError(built.reader)


def zip_files(built: Built, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in built.files:
            archive.write(path, f"{built.zip_folder}/{path.name}")
    return dest


# --- the corpus

_A = affine()
_B = affine(origin=(3.0, -4.0, 5.5))  # same axes, another origin: "disagreeing" transforms
_SHEAR = _A.copy()
_SHEAR[0, 1] = 0.3
_2D = affine(spacing=(0.9, 0.8, 1.0), origin=(-12.5, 30.0, 42.0), rot=rotation(az=0.4))

NIFTI = [
    Variant("nifti1-uint8", nifti_variant(dtype="uint8")),
    Variant("nifti1-int8", nifti_variant(dtype="int8")),
    Variant("nifti1-int16", nifti_variant(dtype="int16")),
    Variant("nifti1-uint16-full-range", nifti_variant(dtype="uint16")),
    Variant("nifti1-int32", nifti_variant(dtype="int32")),
    Variant("nifti1-int32-wide-range", nifti_variant(dtype="int32", wide=True), "quantised: int16 storage"),
    Variant("nifti1-float32-integral", nifti_variant(dtype="float32:int")),
    Variant("nifti1-float32", nifti_variant(dtype="float32"), "quantised: int16 storage"),
    Variant("nifti1-float64", nifti_variant(dtype="float64"), "quantised: int16 storage"),
    Variant("nifti1-big-endian-int16", nifti_variant(dtype="int16", endian=">")),
    Variant("nifti1-big-endian-uint16", nifti_variant(dtype="uint16", endian=">")),
    Variant("nifti1-big-endian-int32", nifti_variant(dtype="int32", endian=">")),
    Variant("nifti1-big-endian-float32-integral", nifti_variant(dtype="float32:int", endian=">")),
    Variant("nifti1-big-endian-float32", nifti_variant(dtype="float32", endian=">")),
    Variant("nifti1-big-endian-float64-gz", nifti_variant("scan.nii.gz", dtype="float64", endian=">")),
    Variant("nifti1-scl-int16", nifti_variant(dtype="int16", slope=0.5, inter=-1024.0)),
    Variant("nifti1-scl-uint8", nifti_variant(dtype="uint8", slope=2.5, inter=1.25)),
    Variant("nifti1-scl-uint16-big-endian", nifti_variant(dtype="uint16", endian=">", slope=0.25, inter=-3.0)),
    Variant("nifti1-scl-float32", nifti_variant(dtype="float32", slope=2.0, inter=100.0)),
    Variant("nifti1-scl-slope-0-means-unscaled", nifti_variant(dtype="int16", slope=0.0, inter=55.0)),
    Variant("nifti1-qform-only", nifti_variant(sform=None)),
    Variant("nifti1-sform-only", nifti_variant(qform=None)),
    Variant(
        "nifti1-sform-only-pixdim-disagrees",
        nifti_variant(qform=None, pixdim=(1.0, 1.0, 1.0)),
        "the sform's columns give the spacing (NIfTI method 3); ITK would take pixdim",
    ),
    Variant("nifti1-qform-and-sform-disagree", nifti_variant(qform=_B, sform=_A), "sform_code 1: sform wins"),
    Variant(
        "nifti1-qform-and-aligned-sform-disagree",
        nifti_variant(qform=_B, sform=_A, scode=2),
        "sform_code 2 (aligned): the sform still wins; ITK would take the qform",
    ),
    Variant(
        "nifti1-sheared-sform-with-qform",
        nifti_variant(qform=_B, sform=_SHEAR, reader="nibabel-qform"),
        "a sheared sform cannot be represented: the qform is used",
    ),
    Variant("nifti1-oblique", nifti_variant(qform=affine(rot=OBLIQUE), sform=affine(rot=OBLIQUE))),
    Variant("nifti1-oblique-qform-only", nifti_variant(qform=affine(rot=OBLIQUE), sform=None)),
    Variant("nifti1-left-handed-qform", nifti_variant(qform=affine(flip=(1, 1, -1)), sform=None)),
    Variant("nifti1-left-handed-sform", nifti_variant(qform=None, sform=affine(flip=(-1, 1, 1)))),
    Variant("nifti1-left-handed-oblique", nifti_variant(qform=affine(rot=OBLIQUE, flip=(1, -1, 1)))),
    Variant(
        "nifti1-no-transform",
        nifti_variant(qform=None, sform=None, pixdim=(0.9, 0.8, 2.5), reader="sitk"),
        "neither code: pixdim spacing, origin 0, axes along LPS (ITK's reading)",
    ),
    Variant("nifti1-2d", nifti_variant(shape=SHAPE[:2], qform=_2D, sform=_2D), "a 2D image keeps its 3D position"),
    Variant("nifti1-4d-with-one-volume", nifti_variant(shape=(*SHAPE, 1))),
    Variant("nifti1-gz", nifti_variant("scan.nii.gz", dtype="int16", qform=affine(rot=OBLIQUE))),
    Variant("nifti1-pair", nifti_variant("scan.hdr", dtype="int16")),
    Variant(
        "nifti1-pair-big-endian-float32-zipped",
        nifti_variant("scan.hdr", dtype="float32", endian=">", zip_folder="study/t1"),
    ),
    Variant("nifti2-int16", nifti_variant("scan.nii", version=2)),
    Variant(
        "nifti2-big-endian-float64-oblique-gz",
        nifti_variant(
            "scan.nii.gz", dtype="float64", endian=">", qform=affine(rot=OBLIQUE), sform=affine(rot=OBLIQUE), version=2
        ),
    ),
    Variant("nifti2-scl-uint16", nifti_variant("scan.nii", dtype="uint16", slope=0.5, inter=10.0, version=2)),
    Variant("nifti2-pair", nifti_variant("scan.hdr", dtype="int32", version=2, qform=_B, sform=_A)),
    Variant("nifti2-2d", nifti_variant("scan.nii", shape=SHAPE[:2], qform=_2D, sform=_2D, version=2)),
]

NRRD = [
    Variant("nrrd-attached-raw-lps-int16", nrrd_variant()),
    Variant(
        "nrrd-attached-gzip-ras-uint8",
        nrrd_variant(dtype="uint8", encoding="gzip", space="right-anterior-superior"),
    ),
    Variant("nrrd-attached-big-endian-int16-oblique", nrrd_variant(endian=">", rot=OBLIQUE)),
    Variant("nrrd-attached-big-endian-float64", nrrd_variant(dtype="float64", endian=">", encoding="gzip")),
    Variant("nrrd-int8", nrrd_variant(dtype="int8")),
    Variant("nrrd-uint16", nrrd_variant(dtype="uint16", encoding="gzip")),
    Variant("nrrd-int32", nrrd_variant(dtype="int32")),
    Variant("nrrd-float32", nrrd_variant(dtype="float32")),
    Variant("nrrd-without-space-directions", nrrd_variant(directions=False), "spacings only: origin 0, LPS axes"),
    Variant("nrrd-left-handed", nrrd_variant(rot=np.diag([1.0, 1.0, -1.0]))),
    Variant("nrrd-detached-raw", nrrd_variant("scan.nhdr", detached=True)),
    Variant(
        "nrrd-detached-gzip-zipped",
        nrrd_variant("scan.nhdr", dtype="uint16", encoding="gzip", detached=True, rot=OBLIQUE, zip_folder="series"),
    ),
    Variant("nrrd-detached-big-endian-float32", nrrd_variant("scan.nhdr", dtype="float32", endian=">", detached=True)),
    Variant("nrrd-2d", nrrd_variant(shape=SHAPE[:2])),
    Variant("nrrd-2d-without-space-directions", nrrd_variant(shape=SHAPE[:2], directions=False)),
]

METAIMAGE = [
    Variant("mha-int16", metaimage_variant()),
    Variant("mha-int16-oblique", metaimage_variant(rot=OBLIQUE)),
    Variant("mha-big-endian-uint16", metaimage_variant(dtype="uint16", msb=True)),
    Variant("mha-big-endian-float64", metaimage_variant(dtype="float64", msb=True)),
    Variant("mha-compressed-float32", metaimage_variant(dtype="float32", compressed=True)),
    Variant("mha-compressed-big-endian-int32", metaimage_variant(dtype="int32", compressed=True, msb=True)),
    Variant("mha-int8", metaimage_variant(dtype="int8")),
    Variant("mha-uint8-left-handed", metaimage_variant(dtype="uint8", rot=np.diag([-1.0, 1.0, 1.0]))),
    Variant("mhd-raw", metaimage_variant("scan.mhd", dtype="int16", rot=OBLIQUE)),
    Variant(
        "mhd-zraw-compressed-zipped", metaimage_variant("scan.mhd", dtype="uint16", compressed=True, zip_folder="exam")
    ),
    Variant("mhd-raw-big-endian-int8", metaimage_variant("scan.mhd", dtype="int8", msb=True)),
    Variant("mha-2d", metaimage_variant(shape=SHAPE[:2])),
]

NIBABEL_ONLY = [
    Variant("mgh-uint8", mgh_variant("brain.mgh", "uint8")),
    Variant("mgz-int16-oblique", mgh_variant("brain.mgz", "int16", rot=OBLIQUE)),
    Variant("mgz-int32", mgh_variant("brain.mgz", "int32")),
    Variant("mgz-float32", mgh_variant("brain.mgz", "float32"), "quantised: int16 storage"),
    Variant("minc1-int16", minc1_variant(dtype="int16")),
    Variant("minc1-uint8-slice-scaled", minc1_variant(dtype="uint8", scaled="slices"), "per-slice scaling: quantised"),
    Variant("minc1-float32-oblique", minc1_variant(dtype="float32", rot=OBLIQUE)),
    Variant("minc1-uint16-negative-step", minc1_variant(dtype="uint16", negative_step=True)),
    Variant("minc2-int16", minc2_variant(dtype="int16")),
    Variant("minc2-big-endian-int32-oblique", minc2_variant(dtype="int32", rot=OBLIQUE, big_endian=True)),
    Variant("minc2-float64", minc2_variant(dtype="float64")),
    Variant("minc2-uint8-slice-scaled", minc2_variant(dtype="uint8", scaled="slices"), "per-slice scaling: quantised"),
]

VARIANTS = NIFTI + NRRD + METAIMAGE + NIBABEL_ONLY
