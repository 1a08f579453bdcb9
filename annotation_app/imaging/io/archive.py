"""Safe extraction of zip uploads: every entry is checked before a byte is written.

Refused: absolute paths, `..` components, drive letters, symlinks, encrypted entries, more entries than
IMPORT_MAX_FILES, a total uncompressed size over IMPORT_MAX_UNCOMPRESSED_BYTES, and entries whose
compression ratio exceeds IMPORT_MAX_COMPRESSION_RATIO (zip bombs). The declared sizes are also enforced
while extracting, so an archive that lies in its headers is stopped too.
"""

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from annotation_app.imaging.io.errors import IngestError, too_large
from annotation_app.imaging.limits import Limits

_RATIO_MIN_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


def is_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _safe_name(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The entry's relative path, or None for directories; raises for anything unsafe."""
    raw = info.filename.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise IngestError(f"archive entry {info.filename!r} has an absolute path", code="unsafe_archive")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise IngestError(
            f"archive entry {info.filename!r} points outside the archive", code="unsafe_archive"
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise IngestError(f"archive entry {info.filename!r} is a symbolic link", code="unsafe_archive")
    if info.flag_bits & 0x1:
        raise IngestError(f"archive entry {info.filename!r} is encrypted", code="unsafe_archive")
    if info.is_dir() or not parts:
        return None
    return PurePosixPath(*parts)


def check_zip(path: Path, limits: Limits) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Validate every entry of the archive at `path`; return (entry, relative path) of its files."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"the zip archive is corrupt ({exc})", code="corrupt") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_files:
            raise too_large(f"the archive has {len(infos)} entries; at most {limits.max_files} are allowed")
        total = 0
        entries = []
        for info in infos:
            name = _safe_name(info)
            if name is None:
                continue
            total += info.file_size
            if total > limits.max_uncompressed_bytes:
                raise too_large(
                    f"the archive expands to more than {limits.max_uncompressed_bytes} bytes (zip bomb?)"
                )
            if info.file_size > _RATIO_MIN_BYTES:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > limits.max_compression_ratio:
                    raise too_large(
                        f"archive entry {info.filename!r} has a compression ratio of {ratio:.0f}:1, "
                        f"over the limit of {limits.max_compression_ratio:.0f}:1 (zip bomb?)"
                    )
            entries.append((info, name))
        return entries


def extract_zip(path: Path, dest: Path, limits: Limits, folders: set[str] | None = None) -> list[Path]:
    """Check, then extract the archive into `dest`; return the extracted files in archive order.

    `folders` (relative POSIX paths, "." for the top) limits extraction to files directly in those
    folders: the worker converting one series of a many-series archive needs only its own folder
    (which also holds companions such as the .raw of an .mhd)."""
    entries = check_zip(path, limits)
    if folders is not None:
        entries = [(info, name) for info, name in entries if str(name.parent) in folders]
    dest = dest.resolve()
    out: list[Path] = []
    with zipfile.ZipFile(path) as archive:
        for info, name in entries:
            target = (dest / Path(*name.parts)).resolve()
            if dest not in target.parents:
                raise IngestError(
                    f"archive entry {info.filename!r} points outside the archive", code="unsafe_archive"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with archive.open(info) as src, open(target, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > info.file_size:
                            raise too_large(f"archive entry {info.filename!r} is larger than it declares")
                        dst.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise IngestError(
                    f"archive entry {info.filename!r} is corrupt ({exc})", code="corrupt"
                ) from None
            out.append(target)
    return out


def pack_files(files: list[tuple[str, Path]], dest: Path) -> Path:
    """Store several uploaded files as one zip (no compression: medical images rarely shrink and the
    copy should be fast), so that every case keeps exactly one original."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, source in files:
            with open(source, "rb") as src, archive.open(name, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
    return dest
