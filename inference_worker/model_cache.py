"""Per-process caches of a propagation worker: loaded models and the image features of recent cases.

A worker process (one per GPU: concurrency 1 on the gpu queue) keeps
- models keyed by (checkpoint path, sha256, config, device): a checkpoint is read from disk once per
  model version, however many jobs use it;
- predictor states keyed by (case, image, model, window, device): MedSAM2's state holds the encoded
  frames, so a correction on the same case re-propagates without encoding the volume again. States are
  kept in an LRU bounded in bytes (MEDSAM2_FEATURE_CACHE_BYTES, default 4 GiB).

torch and medsam2 are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_FEATURE_CACHE_BYTES = 4 * 1024**3


class ModelUnavailable(RuntimeError):
    """No usable model for a job (missing checkpoint, unknown config, no bootstrap model)."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    checkpoint: Path
    config: str
    name: str
    sha256: str = ""
    model_version_id: int | None = None
    #: what messages name: the storage key or the operator's setting, never the local folder
    source: str = ""

    def cache_key(self, device: str) -> tuple:
        return (str(self.checkpoint), self.sha256 or _file_fingerprint(self.checkpoint), self.config, device)


def _file_fingerprint(path: Path) -> str:
    """A cheap identity for a checkpoint without a known sha256: path, size and mtime."""
    st = path.stat()
    return hashlib.sha256(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()


def _setting(name: str, default: Any) -> Any:
    """A worker setting from settings.py (read there once, through lib/env.py); `default` only in a plain
    script without Django settings."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return getattr(settings, name)
    except ImproperlyConfigured:
        return default


def choose_device() -> str:
    """The one device rule, for the model and for the worker's presence beat alike: settings'
    MEDSAM2_DEVICE pins the device; otherwise cuda when an NVIDIA GPU is visible (/dev/nvidia0 or
    nvidia-smi) and the installed torch is a CUDA build, else cpu. It neither imports torch nor
    initialises CUDA: the presence thread asks in the Celery parent, which forks its children."""
    pinned = str(_setting("MEDSAM2_DEVICE", "") or "").strip()
    if pinned:
        return pinned
    return "cuda" if _cuda_usable() else "cpu"


def _cuda_usable() -> bool:
    if not (os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi")):
        return False
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return False
    return "+cpu" not in version


def estimate_nbytes(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """Bytes held by tensors and numpy arrays reachable from `obj` (dataclasses, dicts, lists, attrs)."""
    seen = _seen if _seen is not None else set()
    if id(obj) in seen or _depth > 8 or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return 0
    seen.add(id(obj))
    if hasattr(obj, "state_dict") and hasattr(obj, "parameters"):
        return 0  # a model referenced by the state is shared, not per-case memory
    nbytes = getattr(obj, "nbytes", None)  # numpy arrays and (torch >= 2.1) tensors
    if isinstance(nbytes, int) and hasattr(obj, "shape"):
        return nbytes
    if hasattr(obj, "element_size") and hasattr(obj, "nelement"):
        return int(obj.element_size() * obj.nelement())
    if isinstance(obj, dict):
        items: Any = obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = obj
    elif dataclasses.is_dataclass(obj):
        items = (getattr(obj, f.name) for f in dataclasses.fields(obj))
    elif hasattr(obj, "__dict__"):
        items = vars(obj).values()
    else:
        return 0
    return sum(estimate_nbytes(item, seen, _depth + 1) for item in items)


@dataclasses.dataclass
class CaseEntry:
    predictor: Any
    state: Any
    nbytes: int
    last_used: float


class ModelCache:
    def __init__(self, max_models: int = 2, feature_cache_bytes: int | None = None):
        if feature_cache_bytes is None:
            feature_cache_bytes = _setting("MEDSAM2_FEATURE_CACHE_BYTES", DEFAULT_FEATURE_CACHE_BYTES)
        self.max_models = max_models
        self.feature_cache_bytes = feature_cache_bytes
        self._models: OrderedDict[tuple, Any] = OrderedDict()
        self._cases: OrderedDict[tuple, CaseEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.model_loads = 0
        self.state_builds = 0

    # --- models
    def model(self, spec: ModelSpec, device: str) -> tuple[Any, bool]:
        """(model, loaded_now): the model for `spec` on `device`, loaded at most once per process."""
        if not spec.checkpoint.is_file():
            raise ModelUnavailable(f"model checkpoint not found: {spec.source or spec.name} (model {spec.name})")
        key = spec.cache_key(device)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key], False
        model = load_model(spec, device)
        with self._lock:
            self._models[key] = model
            self.model_loads += 1
            while len(self._models) > self.max_models:
                old_key, _ = self._models.popitem(last=False)
                # States built on an evicted model must go too (they reference it).
                for case_key in [k for k in self._cases if k[2] == old_key]:
                    del self._cases[case_key]
        return model, True

    # --- predictor states (image features) per case
    def case_state(
        self, case_key: tuple, model_key: tuple, build: Callable[[], tuple[Any, Any]]
    ) -> tuple[Any, Any, bool]:
        """(predictor, state, hit) for the case; `build()` -> (predictor, state) runs on a miss."""
        key = (*case_key, model_key)
        with self._lock:
            entry = self._cases.get(key)
            if entry is not None:
                self._cases.move_to_end(key)
                entry.last_used = time.monotonic()
                return entry.predictor, entry.state, True
        predictor, state = build()
        self.state_builds += 1
        self.remember(key, predictor, state)
        return predictor, state, False

    def remember(self, key: tuple, predictor: Any, state: Any) -> None:
        nbytes = estimate_nbytes(state)
        with self._lock:
            self._cases.pop(key, None)
            if nbytes > self.feature_cache_bytes:
                return  # bigger than the whole budget: used for this job only
            while self._cases and self.cached_bytes() + nbytes > self.feature_cache_bytes:
                self._cases.popitem(last=False)
            self._cases[key] = CaseEntry(predictor, state, nbytes, time.monotonic())

    def refresh_size(self, case_key: tuple, model_key: tuple) -> None:
        """Re-measure a state after a job (features are often computed lazily while propagating)."""
        key = (*case_key, model_key)
        with self._lock:
            entry = self._cases.get(key)
        if entry is not None:
            self.remember(key, entry.predictor, entry.state)

    def cached_bytes(self) -> int:
        return sum(entry.nbytes for entry in self._cases.values())

    def cached_cases(self) -> list[tuple]:
        return list(self._cases)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._cases.clear()


def load_model(spec: ModelSpec, device: str):
    """Build the config and load the checkpoint strictly; ModelUnavailable with a clear reason."""
    if not spec.checkpoint.is_file():
        raise ModelUnavailable(f"model checkpoint not found: {spec.source or spec.name} (model {spec.name})")
    from medsam2.build import build_model

    try:
        return build_model(spec.config, spec.checkpoint, device=device)
    except KeyError as exc:
        raise ModelUnavailable(f"model {spec.name}: {exc.args[0] if exc.args else exc}") from None
    except (RuntimeError, ValueError, OSError) as exc:
        where = spec.source or spec.name
        reason = str(exc).replace(str(spec.checkpoint), where)
        raise ModelUnavailable(f"model {spec.name} could not be loaded from {where}: {reason}") from None


#: the cache of this worker process (each prefork child has its own)
CACHE = ModelCache()
