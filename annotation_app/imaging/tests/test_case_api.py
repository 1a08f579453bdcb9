"""/api/cases/: scoped lists with filters, manager-only updates, no direct creation."""

import numpy as np
import pytest

from annotation_app.imaging.models import Case
from annotation_app.imaging.tests.conftest import make_ready_case

pytestmark = pytest.mark.django_db


def test_lists_are_scoped_to_the_callers_projects_and_filterable(
    client_for, annotator, manager, project, other_project
):
    mine = make_ready_case(project, np.zeros((1, 2, 2), np.int16), name="mine", assignee=annotator)
    make_ready_case(project, np.zeros((1, 2, 2), np.int16), name="someone else's")
    make_ready_case(other_project, np.zeros((1, 2, 2), np.int16), name="elsewhere")
    client = client_for(annotator)
    names = sorted(c["name"] for c in client.get("/api/cases/").json()["results"])
    assert names == ["mine", "someone else's"]
    assert [c["id"] for c in client.get("/api/cases/?mine=1").json()["results"]] == [mine.pk]
    assert client.get(f"/api/cases/?assignee={annotator.pk}").json()["count"] == 1
    assert client.get("/api/cases/?status=ingesting").json()["count"] == 0
    assert client.get(f"/api/cases/?project={project.pk}").json()["results"][0]["targets_count"] == 0


def test_a_manager_assigns_and_archives_a_case(client_for, manager, annotator, project):
    case = make_ready_case(project, np.zeros((1, 2, 2), np.int16))
    response = client_for(manager).patch(
        f"/api/cases/{case.pk}/", {"assignee": annotator.pk, "status": "archived"}
    )
    assert response.status_code == 200, response.content
    case.refresh_from_db()
    assert case.assignee == annotator and case.status == "archived"


def test_an_annotator_cannot_update_a_case(client_for, annotator, project):
    case = make_ready_case(project, np.zeros((1, 2, 2), np.int16))
    assert client_for(annotator).patch(f"/api/cases/{case.pk}/", {"name": "x"}).status_code == 403


def test_the_assignee_must_belong_to_the_project(client_for, manager, outsider, project):
    case = make_ready_case(project, np.zeros((1, 2, 2), np.int16))
    response = client_for(manager).patch(f"/api/cases/{case.pk}/", {"assignee": outsider.pk})
    assert response.status_code == 400 and "assignee" in response.json()["errors"]


def test_the_ingest_owns_the_status_except_archiving(client_for, manager, project):
    case = Case.objects.create(project=project, name="pending", modality="CT")
    response = client_for(manager).patch(f"/api/cases/{case.pk}/", {"status": "ready"})
    assert response.status_code == 400


def test_cases_are_not_created_without_an_image(client_for, manager, project):
    response = client_for(manager).post("/api/cases/", {"project": project.pk, "name": "x", "modality": "CT"})
    assert response.status_code == 405
    assert "upload" in response.json()["detail"]


def test_deleting_a_case_removes_its_files(client_for, manager, project, tmp_path):
    case = make_ready_case(project, np.zeros((1, 2, 2), np.int16))
    path = tmp_path / "media" / case.image_key
    assert path.exists()
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client_for(manager).delete(f"/api/cases/{case.pk}/")
    assert response.status_code == 204
    assert not path.exists()
