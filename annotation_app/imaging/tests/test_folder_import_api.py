"""/api/cases/import-folder/: list and import the entries of the server-side IMPORT_DIR."""

import numpy as np
import pytest

from annotation_app.imaging.models import Case
from annotation_app.imaging.tests import helpers

pytestmark = pytest.mark.django_db


@pytest.fixture
def import_dir(tmp_path, settings):
    root = tmp_path / "incoming"
    root.mkdir()
    helpers.dicom_series(root / "ct-series")
    helpers.nifti(root / "mr.nii.gz", np.zeros((2, 4, 4), np.int16))
    (root / ".hidden").write_text("x")
    settings.IMPORT_DIR = str(root)
    return root


def test_a_manager_lists_the_folder_and_imports_entries_once(
    client_for, manager, project, import_dir, django_capture_on_commit_callbacks
):
    client = client_for(manager)
    listing = client.get(f"/api/cases/import-folder/?project={project.pk}").json()
    assert [(e["name"], e["kind"], e["imported"]) for e in listing["entries"]] == [
        ("ct-series", "folder", False),
        ("mr.nii.gz", "file", False),
    ]
    body = {"project": project.pk, "entries": ["ct-series", "mr.nii.gz"], "modality": "MR"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/cases/import-folder/", body, format="json")
    assert response.status_code == 202, response.content
    assert sorted(c["modality"] for c in response.json()["cases"]) == ["CT", "MR"]
    assert all(c.status == "ready" for c in Case.objects.all())
    again = client.post("/api/cases/import-folder/", body, format="json")
    assert again.status_code == 400
    assert again.json()["errors"] == {"ct-series": "already imported", "mr.nii.gz": "already imported"}
    assert all(
        e["imported"] for e in client.get(f"/api/cases/import-folder/?project={project.pk}").json()["entries"]
    )


@pytest.mark.parametrize("name", ["../etc", "ct-series/slice_0000.dcm", ".hidden", "missing"])
def test_only_top_level_entries_of_the_folder_can_be_named(client_for, manager, project, import_dir, name):
    response = client_for(manager).post(
        "/api/cases/import-folder/", {"project": project.pk, "entries": [name]}, format="json"
    )
    assert response.status_code == 400
    assert "not an entry of the import folder" in response.json()["errors"][name]
    assert Case.objects.count() == 0


def test_annotators_may_not_use_the_import_folder(client_for, annotator, project, import_dir):
    assert client_for(annotator).get(f"/api/cases/import-folder/?project={project.pk}").status_code == 403


def test_without_an_import_folder_the_answer_is_404(client_for, manager, project, settings):
    settings.IMPORT_DIR = ""
    response = client_for(manager).get(f"/api/cases/import-folder/?project={project.pk}")
    assert response.status_code == 404 and "IMPORT_DIR" in response.json()["detail"]
