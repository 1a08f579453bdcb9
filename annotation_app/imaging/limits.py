"""Limits on what an upload may contain. Each is a Django setting (IMPORT_MAX_*, read once in settings.py
from the environment variable of the same name, where their defaults and meanings are), so an operator
can raise them without code changes."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


def limit(name: str) -> float:
    """One limit: the setting of that name (settings.py reads it once from the environment)."""
    return getattr(settings, name)


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
    raw = settings.IMPORT_DIR
    return Path(raw) if raw else None
