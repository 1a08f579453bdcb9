"""Limits on what an upload may contain. Each is a Django setting (or environment variable of the same
name) with the default below, so an operator can raise them without code changes."""

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

_DEFAULTS = {
    # One request body (all files together), bytes.
    "IMPORT_MAX_UPLOAD_BYTES": 4 * 1024**3,
    # Sum of the uncompressed sizes of all archive entries, bytes.
    "IMPORT_MAX_UNCOMPRESSED_BYTES": 8 * 1024**3,
    # Uncompressed/compressed size of one archive entry; checked for entries over 1 MiB only, since
    # tiny files (headers, blank slices) legitimately compress very well.
    "IMPORT_MAX_COMPRESSION_RATIO": 100,
    # Entries in one archive.
    "IMPORT_MAX_FILES": 20000,
    # Largest side of an image (rows, columns) and largest number of slices or frames.
    "IMPORT_MAX_DIM": 4096,
    "IMPORT_MAX_FRAMES": 20000,
    # Voxels (x channels) of one case: 600 M int16 voxels = 1.2 GB canonical array.
    "IMPORT_MAX_VOXELS": 600_000_000,
    # Relative tolerance on the spacing between DICOM slices before a series counts as inconsistent.
    "IMPORT_SLICE_SPACING_TOLERANCE": 0.05,
}


def limit(name: str) -> float:
    value = getattr(settings, name, None)
    if value is None:
        raw = os.environ.get(name)
        value = type(_DEFAULTS[name])(raw) if raw not in (None, "") else _DEFAULTS[name]
    return value


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_uncompressed_bytes: int
    max_compression_ratio: float
    max_files: int
    max_dim: int
    max_frames: int
    max_voxels: int
    spacing_tolerance: float

    @classmethod
    def current(cls) -> "Limits":
        return cls(
            max_upload_bytes=int(limit("IMPORT_MAX_UPLOAD_BYTES")),
            max_uncompressed_bytes=int(limit("IMPORT_MAX_UNCOMPRESSED_BYTES")),
            max_compression_ratio=float(limit("IMPORT_MAX_COMPRESSION_RATIO")),
            max_files=int(limit("IMPORT_MAX_FILES")),
            max_dim=int(limit("IMPORT_MAX_DIM")),
            max_frames=int(limit("IMPORT_MAX_FRAMES")),
            max_voxels=int(limit("IMPORT_MAX_VOXELS")),
            spacing_tolerance=float(limit("IMPORT_SLICE_SPACING_TOLERANCE")),
        )


def import_dir() -> Path | None:
    """The server-side folder that `manage.py ingest --folder` reads by default (setting IMPORT_DIR)."""
    raw = getattr(settings, "IMPORT_DIR", None) or os.environ.get("IMPORT_DIR", "")
    return Path(raw) if raw else None
