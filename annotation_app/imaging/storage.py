"""Where case images live: Django's storage API, so the local folder and S3 work alike.

The canonical array of a case is a .npy file (C order, little-endian), which the worker and the slice
API memory-map when storage is a local folder; with remote storage it is copied to a local cache first.
"""

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage


def case_array_key(case) -> str:
    return f"cases/{case.project_id}/{case.pk}/image.npy"


def save_case_array(case, array: np.ndarray) -> str:
    """Write the canonical array of `case` and return its storage key (does not save the row)."""
    key = case_array_key(case)
    if default_storage.exists(key):
        default_storage.delete(key)
    cache_path(key).unlink(missing_ok=True)  # a local copy of an earlier array under this key
    with tempfile.TemporaryFile() as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        handle.seek(0)
        saved = default_storage.save(key, File(handle, name="image.npy"))
    return saved


def cache_path(key: str) -> Path:
    """Where this machine keeps its copy of a remote storage key (VAR_DIR/cache/<key>)."""
    return Path(settings.VAR_DIR) / "cache" / key


def _local_path(key: str) -> Path:
    """A local file with the content of `key`: the file itself on local storage; with remote storage a
    copy in VAR_DIR/cache, written to a private name and renamed into place when complete, so a
    concurrent reader (another pool process, a thread of the web server) never maps a half-copied
    array and a copy cut short (disk full, connection lost) is never taken for the array."""
    try:
        return Path(default_storage.path(key))
    except NotImplementedError:
        cache = cache_path(key)
        if not cache.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            fd, part = tempfile.mkstemp(prefix=f".{cache.name}.", dir=cache.parent)
            try:
                with default_storage.open(key, "rb") as src, os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                os.replace(part, cache)
            except BaseException:
                Path(part).unlink(missing_ok=True)
                raise
        return cache


def open_case_array(case) -> np.ndarray:
    """The canonical array, memory-mapped read-only: (D,H,W) volume or (T,H,W[,3]) video."""
    if not case.image_key:
        raise FileNotFoundError(f"case {case.pk} has no stored image")
    path = _local_path(case.image_key)
    if not path.exists():
        raise FileNotFoundError(f"the image of case {case.pk} is missing from storage ({case.image_key})")
    return np.load(path, mmap_mode="r", allow_pickle=False)


def array_to_npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
