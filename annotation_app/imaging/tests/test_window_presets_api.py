"""GET /api/windows/ serves medsam2.window.PRESETS, and no other preset table is left in the code."""

import re
from pathlib import Path

import pytest

from medsam2.window import PRESETS

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


def test_the_api_answers_exactly_medsam2s_preset_table(client_for, annotator):
    response = client_for(annotator).get("/api/windows/")
    assert response.status_code == 200
    body = response.json()
    assert body["default"] == "abdomen"
    assert [(p["name"], p["level"], p["width"], p["label"]) for p in body["presets"]] == [
        (name, w.level, w.width, w.label) for name, w in PRESETS.items()
    ]
    assert len(body["presets"]) == 7 and body["presets"][5] == {
        "name": "liver", "label": "Liver", "level": 30.0, "width": 150.0
    }


def test_anonymous_callers_get_no_presets(client):
    assert client.get("/api/windows/").status_code in (401, 403)


def test_the_slice_renderer_knows_exactly_the_same_preset_names(client_for, annotator, volume_case):
    response = client_for(annotator).get(f"/api/cases/{volume_case.pk}/slice/?index=0&preset=liver")
    assert response.status_code == 200 and response["X-Window"] == "30,150"
    bad = client_for(annotator).get(f"/api/cases/{volume_case.pk}/slice/?index=0&preset=kidney")
    assert bad.status_code == 400


def test_no_second_preset_table_is_left_in_the_code():
    """A table names the mediastinum window next to another preset; only medsam2/window.py may."""
    pattern = re.compile(r"mediastinum[\"']?\s*[:=,]")
    holders = []
    for folder in ("medsam2", "annotation_app", "inference_worker", "frontend/src"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".ts") or "tests" in path.parts or path.name.endswith(".test.ts"):
                continue
            if pattern.search(path.read_text(errors="replace")):
                holders.append(str(path.relative_to(ROOT)))
    assert holders == ["medsam2/window.py"]
