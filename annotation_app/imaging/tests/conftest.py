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


def make_ready_case(project, array, kind="volume", modality="CT", **fields):
    """A ready case whose canonical array is `array`, without running the ingest."""
    from annotation_app.imaging.models import Case
    from annotation_app.imaging.storage import save_case_array

    case = Case.objects.create(
        project=project,
        name=fields.pop("name", "case"),
        kind=kind,
        modality=modality,
        shape=list(array.shape),
        spacing=[2.0, 0.8, 0.7],
        origin=[0.0, 0.0, 0.0],
        direction=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
        status="ready",
        **fields,
    )
    meta = {
        "dtype": str(array.dtype),
        "rescale": {"slope": 1.0, "intercept": 0.0},
        "window": {"level": 40.0, "width": 400.0},
    }
    meta.update(fields.get("image_meta") or {})
    case.image_key = save_case_array(case, array)
    case.image_meta = meta
    case.save()
    return case


@pytest.fixture
def volume_case(project):
    import numpy as np

    array = np.arange(6 * 20 * 30, dtype=np.int16).reshape(6, 20, 30) - 1000
    return make_ready_case(project, array)
