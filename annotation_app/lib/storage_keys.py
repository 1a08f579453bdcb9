"""Storage keys: the only way a row may name a file (never a server path).

A key is a relative, '/'-separated name inside the project's storage (the local media folder or an S3
bucket): no absolute path, no `..` or `.` segment, no backslash, no empty segment, no control character.
Messages name the key the caller gave, never the folder it would resolve to.
"""

import re

MAX_KEY_LENGTH = 500
_SEGMENT = re.compile(r"^[A-Za-z0-9._+()\- ]+$")


class StorageKeyError(ValueError):
    pass


def check_storage_key(key: str, prefix: str = "") -> str:
    """`key` if it is a storage key (under `prefix`, itself a key ending in '/'); else StorageKeyError."""
    if not isinstance(key, str) or not key:
        raise StorageKeyError("a storage key is required")
    if len(key) > MAX_KEY_LENGTH:
        raise StorageKeyError(f"a storage key has at most {MAX_KEY_LENGTH} characters")
    if key.startswith(("/", "~")) or "\\" in key or re.match(r"^[A-Za-z]:", key):
        raise StorageKeyError("a storage key is a relative name inside the project's storage, not a server path")
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise StorageKeyError("a storage key has no empty, '.' or '..' parts")
    if not all(_SEGMENT.match(segment) for segment in segments):
        raise StorageKeyError("a storage key uses only letters, digits, spaces and . _ + - ( ) in its parts")
    if prefix and not key.startswith(prefix):
        raise StorageKeyError(f"this key must lie under {prefix}")
    return key
