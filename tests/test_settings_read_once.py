"""Every setting is read once, in settings.py through lib/env.py; the worker has one device rule."""

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from annotation_app.lib.env import env_float
from inference_worker import model_cache, recovery

REPO = Path(__file__).resolve().parent.parent
_READS = re.compile(r"os\.environ(?:\.get)?[\[(]|os\.getenv\(")
#: not runtime readers: the entry points name the settings module, lib/env.py is the reader itself
ENTRY_POINTS = {
    "annotation_app/asgi.py",
    "annotation_app/celery.py",
    "annotation_app/wsgi.py",
    "annotation_app/lib/env.py",
    "annotation_app/settings.py",
}
#: still reading the environment directly, in a file another engineer has open (issue 12 item 5 remains)
NOT_YET = {
    "annotation_app/imaging/ingest_recovery.py",
}


def test_only_settings_read_the_environment_in_the_runtime_modules():
    readers = set()
    for package in ("annotation_app", "inference_worker"):
        for path in (REPO / package).rglob("*.py"):
            if "tests" in path.parts:
                continue
            if _READS.search(path.read_text()):
                readers.add(str(path.relative_to(REPO)))
    assert readers - ENTRY_POINTS <= NOT_YET, sorted(readers - ENTRY_POINTS - NOT_YET)
    for done in (
        "inference_worker/recovery.py",
        "inference_worker/tasks/propagation.py",
        "inference_worker/model_cache.py",
        "inference_worker/sessions.py",
        "annotation_app/imaging/limits.py",
        "annotation_app/imaging/demo.py",
        "annotation_app/projects/management/commands/create_demo_admin.py",
    ):
        assert done not in readers


def test_a_bad_number_fails_loudly_instead_of_falling_back(monkeypatch):
    monkeypatch.setenv("PROPAGATION_STALE_AFTER_S", "sixty")
    with pytest.raises(ImproperlyConfigured, match="PROPAGATION_STALE_AFTER_S must be a number"):
        env_float("PROPAGATION_STALE_AFTER_S", 60.0)
    monkeypatch.setenv("PROPAGATION_STALE_AFTER_S", "2.5")
    assert env_float("PROPAGATION_STALE_AFTER_S", 60.0) == 2.5


def test_the_presence_beat_and_the_model_share_one_device_rule(settings, monkeypatch):
    assert not hasattr(recovery, "describe_device") and recovery.choose_device is model_cache.choose_device
    settings.MEDSAM2_DEVICE = "cuda:3"
    assert recovery.choose_device() == "cuda:3"
    settings.MEDSAM2_DEVICE = ""
    monkeypatch.setattr(model_cache.os.path, "exists", lambda p: p == "/dev/nvidia0")
    monkeypatch.setattr(model_cache.importlib.metadata, "version", lambda name: "2.13.0+cu128")
    assert model_cache.choose_device() == "cuda"  # a GPU is visible and torch is a CUDA build
    monkeypatch.setattr(model_cache.importlib.metadata, "version", lambda name: "2.13.0+cpu")
    assert model_cache.choose_device() == "cpu"  # a CPU-only torch cannot use it: not "cuda" for the beat


def test_the_worker_settings_come_from_settings_py(settings):
    from inference_worker.sessions import SessionStore

    settings.MEDSAM2_SESSIONS = 3
    settings.MEDSAM2_FEATURE_CACHE_BYTES = 1234
    assert SessionStore().max_sessions == 3
    assert model_cache.ModelCache().feature_cache_bytes == 1234


def test_upload_limits_and_the_import_folder_are_settings(settings, tmp_path):
    from annotation_app.imaging.limits import Limits, import_dir

    settings.IMPORT_MAX_FILES = 7
    settings.IMPORT_DIR = str(tmp_path)
    assert Limits.current().max_files == 7 and import_dir() == tmp_path
    settings.IMPORT_DIR = ""
    assert import_dir() is None
