"""NIfTI, NRRD and MetaImage headers, read here before any image reader opens the file.

Three things are decided from the header alone, in the upload request and again in the worker:

1. **Where the voxels are.** Only in the file itself, or in one file beside it inside the upload's own
   folder. A data file named by an absolute path, with `..`, through a symbolic link, as a list or a
   numbered pattern of files, or missing from the upload is refused, so a header can never make a
   reader open a file of the server (`ElementDataFile = /etc/passwd`, `data file: ../../db.sqlite3`).
2. **How many voxels, and are they all there.** Sizes are held against the limits first (a NIfTI-2
   header claiming 100000^3 voxels is refused for its size, whatever a reader would make of it), then
   the bytes present against the bytes declared: a truncated file is refused, never zero-filled.
3. **The spacing.** A zero, negative or non-finite voxel size is refused with the value that is wrong.

The parsers are deliberately stricter than the readers (a field given twice, in any spelling, is
refused), so that what is checked here is what the reader will read.
"""

import gzip
import math
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from annotation_app.imaging.io.errors import IngestError, too_large, unsupported
from annotation_app.imaging.limits import Limits

_CHUNK = 1 << 20
#: bytes of header text read at most (a real NRRD or MetaImage header is a few hundred bytes)
_MAX_HEADER = 256 * 1024


@dataclass
class VolumeHeader:
    format: str  # "nifti" | "nrrd" | "metaimage"
    size: list[int]  # voxels along x, y[, z]
    spacing: list[float]  # mm along the same axes
    components: int = 1
    #: the separate data file, relative to the upload's root (None: the voxels follow the header)
    data_file: str | None = None
    extra: dict = field(default_factory=dict)


def kind_of(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith((".nii", ".nii.gz", ".hdr")):
        return "nifti"
    if lower.endswith((".nrrd", ".nhdr")):
        return "nrrd"
    if lower.endswith((".mha", ".mhd")):
        return "metaimage"
    if lower.endswith(".mnc"):
        return "minc"
    return None


def check(root: Path, name: str, limits: Limits) -> VolumeHeader:
    """Validate the header of the file `name` (relative to `root`, the upload's folder)."""
    kind = kind_of(name)
    if kind == "nifti":
        return _nifti(root, name, limits)
    if kind == "nrrd":
        return _nrrd(root, name, limits)
    if kind == "metaimage":
        return _metaimage(root, name, limits)
    if kind == "minc":
        return _minc(root, name)
    raise unsupported(f"{name}: not a NIfTI, NRRD or MetaImage file")


# --- shared rules


def data_file_inside(root: Path, header: str, reference: str, name: str) -> str:
    """The data file a header names, as a path relative to `root`; refused unless it is a regular file
    inside `root`, reached without `..` or symbolic links. Returns its POSIX path relative to root."""
    ref = reference.strip()
    where = f"{name} names its voxel data file {ref!r}"
    if not ref:
        raise IngestError(f"{name} names an empty voxel data file", code="corrupt")
    if ref.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", ref) or "\\" in ref:
        raise IngestError(
            f"{name} names an absolute path as its voxel data file; the data file must lie beside the "
            "header in the upload",
            code="unsafe_reference",
        )
    parts = [p for p in ref.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise IngestError(
            f"{name} names a voxel data file with '..', which points outside the header's folder; the "
            "data file must lie beside the header in the upload",
            code="unsafe_reference",
        )
    relative = PurePosixPath(header).parent.joinpath(*parts)
    current = root
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            raise IngestError(f"{where}, which is a symbolic link", code="unsafe_reference")
    target = root / Path(*relative.parts)
    if not target.is_file():
        raise IngestError(f"{where}, which is not in the upload", code="missing_data_file")
    if root.resolve() not in target.resolve().parents:
        raise IngestError(f"{where}, which lies outside the upload", code="unsafe_reference")
    if relative == PurePosixPath(header):
        raise IngestError(f"{where}: the header itself", code="corrupt")
    return relative.as_posix()


def check_size(name: str, size: list[int], limits: Limits) -> list[int]:
    """Drop trailing axes of length 1 beyond the third, then hold the sizes against the limits."""
    dims = list(size)
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()
    shape = "x".join(map(str, dims))
    if any(s < 0 for s in dims):
        raise IngestError(f"{name} declares a negative size ({shape})", code="corrupt")
    if len(dims) > 3:
        raise unsupported(f"{name} is a {len(dims)}D image ({shape}); only 2D and 3D images are supported")
    if any(s > limits.max_dim for s in dims[:2]) or (len(dims) > 2 and dims[2] > limits.max_frames):
        raise too_large(
            f"{name} is {shape} voxels; the limit is {limits.max_dim} per side and {limits.max_frames} slices"
        )
    voxels = math.prod(dims)
    if voxels > limits.max_voxels:
        raise too_large(f"{name} has {voxels} voxels; the limit is {limits.max_voxels}")
    if voxels == 0:
        raise IngestError(f"{name} is empty ({shape} voxels)", code="empty")
    return dims


def check_spacing(name: str, spacing: list[float], what: str = "voxel spacing") -> None:
    for axis, value in zip("xyz", spacing, strict=False):
        if not (isinstance(value, float | int) and math.isfinite(value) and value > 0):
            raise IngestError(
                f"{name} has a {what} of {value} mm along {axis}; spacing must be a positive, finite number",
                code="invalid_spacing",
            )


def _truncated(name: str, present: int, needed: int) -> IngestError:
    return IngestError(
        f"{name} is truncated: its header declares {needed} bytes of voxel data but only {present} are present",
        code="truncated",
    )


def _count_zlib(handle, needed: int) -> int:
    """Bytes a zlib stream from `handle` expands to, stopping once `needed` is reached (a decompression
    bomb is never expanded past what the header declares, and never more than a chunk at a time)."""
    stream, total = zlib.decompressobj(), 0
    try:
        while total < needed and not stream.eof:
            data = stream.unconsumed_tail or handle.read(_CHUNK)
            if not data:
                break
            total += len(stream.decompress(data, _CHUNK))
    except zlib.error:
        pass
    return total


def _count_gzip(path: Path, offset: int, needed: int) -> int:
    with open(path, "rb") as raw:
        raw.seek(offset)
        with gzip.GzipFile(fileobj=raw) as handle:
            total = 0
            try:
                while total < needed and (chunk := handle.read(_CHUNK)):
                    total += len(chunk)
            except (OSError, EOFError, zlib.error):
                pass
    return total


def _count_tokens(handle, needed: int) -> int:
    """Whitespace- (or comma-) separated values in a text data section, stopping at `needed`."""
    count, inside = 0, False
    while count < needed and (chunk := handle.read(_CHUNK)):
        for token in re.finditer(rb"[^\s,]+", chunk):
            if not (inside and token.start() == 0):
                count += 1
        inside = bool(chunk) and not chr(chunk[-1]).isspace() and chunk[-1:] != b","
    return count


# --- NIfTI-1 / NIfTI-2

_NIFTI_BYTES = {
    2: 1, 4: 2, 8: 4, 16: 4, 32: 8, 64: 8, 128: 3, 256: 1, 512: 2, 768: 4, 1024: 8, 1280: 8,
    1536: 16, 1792: 16, 2048: 32, 2304: 4,
}  # fmt: skip


def _nifti(root: Path, name: str, limits: Limits) -> VolumeHeader:
    path = root / name
    compressed = name.lower().endswith(".gz")
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as handle:
            head = handle.read(540)
    except (OSError, EOFError, zlib.error):
        raise IngestError(f"{name} is not a readable image file (damaged gzip data)", code="corrupt") from None
    if len(head) < 348:
        raise IngestError(f"{name} is too short to be a NIfTI file ({len(head)} header bytes)", code="corrupt")
    for order in ("<", ">"):
        header_size = struct.unpack(order + "i", head[:4])[0]
        if header_size in (348, 540):
            break
    else:
        raise IngestError(f"{name} has no valid NIfTI header", code="corrupt")
    if header_size == 348:
        dims = list(struct.unpack(order + "8h", head[40:56]))
        datatype = struct.unpack(order + "h", head[70:72])[0]
        pixdim = list(struct.unpack(order + "8f", head[76:108]))
        offset_value = float(struct.unpack(order + "f", head[108:112])[0])
        magic = head[344:348]
        single, pair = magic == b"n+1\0", magic == b"ni1\0"
    else:
        if len(head) < 540:
            raise IngestError(f"{name} is too short for its NIfTI-2 header", code="corrupt")
        magic = head[4:12]
        datatype = struct.unpack(order + "h", head[12:14])[0]
        dims = list(struct.unpack(order + "8q", head[16:80]))
        pixdim = list(struct.unpack(order + "8d", head[104:168]))
        offset_value = float(struct.unpack(order + "q", head[168:176])[0])
        single, pair = magic[:4] == b"n+2\0", magic[:4] == b"ni2\0"
    # The NIfTI library decides the byte order from dim[0] (1..7); it must agree with the header size,
    # or the sizes checked here would not be the sizes the reader uses.
    if not 1 <= dims[0] <= 7:
        raise IngestError(f"{name} has an invalid NIfTI header (dim[0] = {dims[0]})", code="corrupt")
    is_header_only = name.lower().endswith(".hdr")
    if not (single or pair):
        raise IngestError(f"{name} is not a NIfTI file (no NIfTI magic string)", code="corrupt")
    if pair and not is_header_only:
        raise IngestError(
            f"{name} says its voxels are in a separate .img file; upload a single-file .nii "
            "(or the .hdr and .img pair)",
            code="unsupported_layout",
        )
    ndim = dims[0]
    size = check_size(name, dims[1 : ndim + 1], limits)
    spacing = [float(v) for v in pixdim[1 : min(ndim, 3) + 1]]
    check_spacing(name, spacing, "voxel size (pixdim)")
    item = _NIFTI_BYTES.get(datatype)
    if item is None:
        raise unsupported(f"{name} has the NIfTI data type {datatype}, which is not supported")
    needed = math.prod(size) * item
    data_file = None
    if pair:
        stem = PurePosixPath(name).name[: -len(".hdr")]
        folder = (root / name).parent
        companion = (
            stem + ".img.gz"
            if not (folder / f"{stem}.img").exists() and (folder / f"{stem}.img.gz").exists()
            else stem + ".img"
        )
        data_file = data_file_inside(root, name, companion, name)
        start = max(int(offset_value), 0) if math.isfinite(offset_value) else 0
        if companion.endswith(".gz"):
            present = max(_count_gzip(root / data_file, 0, start + needed) - start, 0)
        else:
            present = (root / data_file).stat().st_size - start
    else:
        if not math.isfinite(offset_value) or offset_value < 0:
            raise IngestError(f"{name} has an invalid voxel offset ({offset_value})", code="corrupt")
        start = max(int(offset_value), header_size)
        if compressed:
            present = max(_count_gzip(path, 0, start + needed) - start, 0)
        else:
            present = path.stat().st_size - start
    if present < needed:
        raise _truncated(name, max(present, 0), needed)
    return VolumeHeader("nifti", size, spacing, 1, data_file, {"datatype": datatype})


# --- NRRD

_NRRD_TYPES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
        "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64",
        "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t",
        "double"),
}  # fmt: skip
_NRRD_BYTES = {name: size for size, names in _NRRD_TYPES.items() for name in names}
_NRRD_SPATIAL_KINDS = {"domain", "space", "time", "???", "none"}
_NRRD_ENCODINGS = {"raw": "raw", "gz": "gzip", "gzip": "gzip", "bz2": "bzip2", "bzip2": "bzip2"}
_NRRD_ENCODINGS.update({"txt": "text", "text": "text", "ascii": "text", "hex": "hex"})


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _text_line(raw: bytes, name: str) -> str:
    """One header line as text; control characters (a lone carriage return that another parser could
    take for a line break, NUL, ...) are refused so that every parser sees the same lines."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise IngestError(f"{name} has a header that is not text", code="corrupt") from None
    if _CONTROL.search(line):
        raise IngestError(f"{name} has control characters in its header", code="corrupt")
    return line


def _read_header_lines(path: Path, name: str, first: bytes) -> tuple[list[str], int]:
    """Text lines up to the first empty line (or the end of the file); returns them and the byte offset
    just after the header."""
    with open(path, "rb") as handle:
        head = handle.read(_MAX_HEADER + 1)
    if not head.startswith(first):
        raise IngestError(f"{name} does not start with {first.decode()!r}", code="corrupt")
    lines, offset = [], 0
    while offset < len(head):
        end = head.find(b"\n", offset)
        if end < 0:
            if len(head) > _MAX_HEADER:
                raise IngestError(f"{name} has a header longer than {_MAX_HEADER} bytes", code="corrupt")
            end = len(head)
        raw = head[offset:end]
        offset = end + 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw:
            return lines, offset
        lines.append(_text_line(raw, name))
    return lines, min(offset, len(head))


def _nrrd_fields(name: str, lines: list[str]) -> dict[str, str]:
    """Fields by normalised name (lower case, no spaces: "data file" = "datafile" = "Data File"), as
    teem reads them: a line is a key/value pair (ignored) only when its ":=" comes before any ": "."""
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        pair, colon = line.find(":="), line.find(": ")
        if pair >= 0 and (colon < 0 or pair < colon):
            continue
        key, sep, value = line.partition(": ") if colon >= 0 else line.partition(":")
        if not sep:
            raise IngestError(f"{name} has an unreadable header line {line[:60]!r}", code="corrupt")
        norm = re.sub(r"\s+", "", key).lower()
        if norm in fields:
            raise IngestError(f"{name} gives the header field {key.strip()!r} twice", code="corrupt")
        fields[norm] = value.strip()
    return fields


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


def _nrrd(root: Path, name: str, limits: Limits) -> VolumeHeader:
    path = root / name
    lines, data_offset = _read_header_lines(path, name, b"NRRD")
    fields = _nrrd_fields(name, lines)
    try:
        sizes = [int(v) for v in fields["sizes"].split()]
        dimension = int(fields.get("dimension", len(sizes)))
    except KeyError:
        raise IngestError(f"{name} has no 'sizes' field", code="corrupt") from None
    except ValueError:
        raise IngestError(f"{name} has an unreadable 'sizes' or 'dimension' field", code="corrupt") from None
    if dimension != len(sizes) or not sizes:
        raise IngestError(f"{name} declares {dimension} dimensions but {len(sizes)} sizes", code="corrupt")
    kinds = fields.get("kinds", "").split() or ["domain"] * len(sizes)
    if len(kinds) != len(sizes):
        raise IngestError(f"{name} has {len(kinds)} kinds for {len(sizes)} axes", code="corrupt")
    spatial = [i for i, k in enumerate(kinds) if k.lower() in _NRRD_SPATIAL_KINDS]
    components = math.prod(sizes[i] for i in range(len(sizes)) if i not in spatial)
    size = check_size(name, [sizes[i] for i in spatial], limits)
    spacing = _nrrd_spacing(name, fields, spatial, len(sizes))
    item = _NRRD_BYTES.get(fields.get("type", "").lower())
    if item is None:
        raise unsupported(f"{name} has the NRRD type {fields.get('type')!r}, which is not supported")
    encoding = _NRRD_ENCODINGS.get(fields.get("encoding", "").lower())
    if encoding is None or encoding == "bzip2":
        raise unsupported(f"{name} uses the NRRD encoding {fields.get('encoding')!r}, which is not supported")
    try:
        line_skip = int(fields.get("lineskip", 0))
        byte_skip = int(fields.get("byteskip", 0))
    except ValueError:
        raise IngestError(f"{name} has an unreadable 'line skip' or 'byte skip'", code="corrupt") from None
    if line_skip < 0 or byte_skip < -1 or (byte_skip == -1 and encoding != "raw"):
        raise IngestError(f"{name} has an invalid 'line skip' or 'byte skip'", code="corrupt")
    reference = fields.get("datafile")
    data_file = None
    if reference is not None:
        if reference.upper().startswith("LIST") or "%" in reference or re.search(r"\s", reference):
            raise IngestError(
                f"{name} spreads its voxels over several files ({reference[:60]!r}); only one data file "
                "beside the header is supported",
                code="unsupported_layout",
            )
        data_file = data_file_inside(root, name, reference, name)
        data_path, start = root / data_file, 0
    else:
        data_path, start = path, data_offset
    needed = math.prod(size) * components * item
    present = _nrrd_present(data_path, start, line_skip, byte_skip, encoding, needed, item)
    if present < needed:
        raise _truncated(name, present, needed)
    return VolumeHeader("nrrd", size, spacing, components, data_file, {"encoding": encoding})


def _nrrd_spacing(name: str, fields: dict, spatial: list[int], n_axes: int) -> list[float]:
    spacing, what = [1.0] * len(spatial), "spacing"
    try:
        if "spacedirections" in fields:
            vectors = re.findall(r"\(([^)]*)\)|none", fields["spacedirections"])
            if len(vectors) != n_axes or any(not vectors[i] for i in spatial):
                raise ValueError
            lengths = [math.sqrt(sum(float(c) ** 2 for c in vectors[i].split(","))) for i in spatial]
            spacing, what = lengths, "space direction length"
        elif "spacings" in fields:
            values = _floats(fields["spacings"])
            if len(values) != n_axes:
                raise ValueError
            spacing = [values[i] for i in spatial]
    except ValueError:
        raise IngestError(f"{name} has an unreadable 'spacings' or 'space directions' field", code="corrupt") from None
    check_spacing(name, spacing, what)
    return spacing


def _nrrd_present(path: Path, start: int, line_skip: int, byte_skip: int, encoding: str, needed: int, item: int):
    with open(path, "rb") as handle:
        handle.seek(start)
        for _ in range(line_skip):
            if not handle.readline():
                return 0
        position = handle.tell()
        if encoding == "raw":
            available = path.stat().st_size - position
            return available if byte_skip == -1 else available - byte_skip
        if encoding == "gzip":
            return max(_count_gzip(path, position, needed + byte_skip) - byte_skip, 0)
        if encoding == "hex":
            digits = 0
            while digits < 2 * needed and (chunk := handle.read(_CHUNK)):
                digits += len(re.findall(rb"[0-9A-Fa-f]", chunk))
            return digits // 2
        return _count_tokens(handle, needed // item) * item  # text


# --- MetaImage (.mha, .mhd)

_MET_BYTES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8,
}  # fmt: skip


#: MetaImage fields this module reads, in the only spelling MetaIO accepts (it is case-sensitive)
_MET_FIELDS = (
    "NDims", "DimSize", "ElementType", "ElementNumberOfChannels", "ElementSpacing", "ElementSize",
    "HeaderSize", "CompressedData", "CompressedDataSize", "BinaryData", "ElementDataFile",
)  # fmt: skip
_MET_SPELLING = {key.lower(): key for key in _MET_FIELDS}


def _metaimage_fields(path: Path, name: str) -> tuple[dict[str, str], int]:
    """Fields up to and including ElementDataFile (always the last), and the byte offset after it.

    MetaIO matches field names case-sensitively and skips the ones it does not know; a field this module
    reads written in another case is refused, so that "elementdatafile = LOCAL" can never hide the
    "ElementDataFile = /etc/passwd" below it."""
    with open(path, "rb") as handle:
        head = handle.read(_MAX_HEADER)
    fields: dict[str, str] = {}
    offset = 0
    while offset < len(head):
        end = head.find(b"\n", offset)
        if end < 0:
            end = len(head)
        raw = head[offset:end]
        offset = end + 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            continue
        line = _text_line(raw, name)
        match = re.match(r"\s*([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if match is None:
            raise IngestError(f"{name} has an unreadable header line {line[:60]!r}", code="corrupt")
        key, value = match.group(1), match.group(2).strip()
        spelling = _MET_SPELLING.get(key.lower())
        if spelling is None:
            continue
        if key != spelling:
            raise IngestError(f"{name}: the header field {key!r} must be spelled {spelling!r}", code="corrupt")
        if key in fields:
            raise IngestError(f"{name} gives the header field {key!r} twice", code="corrupt")
        fields[key] = value
        if key == "ElementDataFile":
            return fields, min(offset, len(head))
    raise IngestError(f"{name} has no ElementDataFile line (not a MetaImage header?)", code="corrupt")


def _metaimage(root: Path, name: str, limits: Limits) -> VolumeHeader:
    path = root / name
    fields, header_end = _metaimage_fields(path, name)
    try:
        dims = [int(v) for v in fields["DimSize"].split()]
        ndims = int(fields.get("NDims", len(dims)))
        channels = int(fields.get("ElementNumberOfChannels", 1))
        header_size = int(fields.get("HeaderSize", 0))
        spacing_text = fields.get("ElementSpacing") or fields.get("ElementSize")
        spacing = _floats(spacing_text) if spacing_text else [1.0] * ndims
    except KeyError:
        raise IngestError(f"{name} has no DimSize field", code="corrupt") from None
    except ValueError:
        raise IngestError(f"{name} has an unreadable DimSize, NDims or ElementSpacing", code="corrupt") from None
    if ndims != len(dims) or len(spacing) < ndims or channels < 1:
        raise IngestError(f"{name} declares NDims = {ndims} but DimSize has {len(dims)} values", code="corrupt")
    size = check_size(name, dims, limits)
    check_spacing(name, spacing[: min(ndims, 3)], "ElementSpacing")
    element = fields.get("ElementType", "").upper()
    if element not in _MET_BYTES:
        raise unsupported(f"{name} has the element type {element or 'none'!r}, which is not supported")
    reference = fields["ElementDataFile"]
    data_file = None
    if reference.upper() == "LOCAL":
        data_path, start = path, header_end
    elif reference.upper().startswith("LIST") or "%" in reference:
        raise IngestError(
            f"{name} spreads its voxels over several files ({reference[:60]!r}); only one data file "
            "beside the header is supported",
            code="unsupported_layout",
        )
    else:
        data_file = data_file_inside(root, name, reference, name)
        data_path, start = root / data_file, 0
    if header_size < -1:
        raise IngestError(f"{name} has an invalid HeaderSize ({header_size})", code="corrupt")
    needed = math.prod(size) * channels * _MET_BYTES[element]
    file_size = data_path.stat().st_size
    if header_size == -1:  # the voxels are the last bytes of the file
        present = file_size - start
    else:
        start += header_size
        compressed = fields.get("CompressedData", "false").lower() == "true"
        binary = fields.get("BinaryData", "true").lower() != "false"
        with open(data_path, "rb") as handle:
            handle.seek(start)
            if compressed:
                present = _count_zlib(handle, needed)
            elif not binary:
                present = _count_tokens(handle, needed // _MET_BYTES[element]) * _MET_BYTES[element]
            else:
                present = file_size - start
    if present < needed:
        raise _truncated(name, max(present, 0), needed)
    return VolumeHeader("metaimage", size, spacing[: len(size)], channels, data_file, {"element": element})


# --- MINC 2 (HDF5): no external storage, links or virtual datasets


def _minc(root: Path, name: str) -> VolumeHeader:
    """MINC 1 (netCDF classic) names no other file. MINC 2 is HDF5, where a dataset may keep its bytes
    in external files (any path), be a virtual view of other files, or a link may lead to another
    file; HDF5 would read those for the reader, so any of them is refused. Sizes and values are checked
    by the reader's probe (io/nibabel_io.py), which reads the header only."""
    import h5py

    path = root / name
    if not h5py.is_hdf5(path):
        return VolumeHeader("minc", [], [])
    refused = f"{name} keeps voxel data outside itself"
    try:
        with h5py.File(path, "r") as handle:
            seen: set = set()
            pending = [handle]
            while pending:
                group = pending.pop()
                for key in group:
                    link = group.get(key, getlink=True)
                    if isinstance(link, h5py.ExternalLink):
                        raise IngestError(f"{refused} (an HDF5 link to another file)", code="unsafe_reference")
                    if isinstance(link, h5py.SoftLink):
                        continue  # a path inside this file; its target is visited where it lives
                    item = group[key]
                    if item.id in seen:
                        continue
                    seen.add(item.id)
                    if isinstance(item, h5py.Group):
                        pending.append(item)
                    elif isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
                        raise IngestError(f"{refused} (HDF5 external or virtual storage)", code="unsafe_reference")
    except IngestError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError):
        raise IngestError(f"{name} is not a readable MINC file (damaged HDF5)", code="corrupt") from None
    return VolumeHeader("minc", [], [])
