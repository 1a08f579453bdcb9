"""Imaging tests store files under a per-test folder and run the ingest synchronously on commit."""

import pytest


@pytest.fixture(autouse=True)
def imaging_storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"
    settings.IMAGING_INGEST_EAGER = True
    from annotation_app.imaging import rendering

    rendering._cached_array.cache_clear()
    return tmp_path


def stored_files(tmp_path) -> list[str]:
    """Every file in media storage and in the staging folder (to prove nothing is left behind)."""
    out = []
    for folder in (tmp_path / "media", tmp_path / "var" / "tmp"):
        if folder.exists():
            out += [str(p.relative_to(tmp_path)) for p in folder.rglob("*") if p.is_file()]
    return out
