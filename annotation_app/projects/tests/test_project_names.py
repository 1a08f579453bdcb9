"""Project names are unique among each member's own projects, and never a way to learn what other
teams call theirs (a server-wide rule answered "already exists" for names the caller cannot see)."""

import pytest
from django.contrib.auth import get_user_model

from annotation_app.projects.models import Project

pytestmark = pytest.mark.django_db


def _staff(name):
    return get_user_model().objects.create_user(username=name, password=f"{name}-pw-123", is_staff=True)


def test_a_name_another_team_uses_is_accepted_and_reveals_nothing(client_for, project, owner):
    stranger = _staff("stranger")
    response = client_for(stranger).post("/api/projects/", {"name": project.name, "modality": "CT"})
    assert response.status_code == 201, response.content
    assert Project.objects.filter(name=project.name).count() == 2
    names = [p["id"] for p in client_for(stranger).get("/api/projects/").json()["results"]]
    assert names == [response.json()["id"]]  # the other team's project stays invisible


def test_a_member_cannot_have_two_projects_of_the_same_name(client_for, project, owner):
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    response = client_for(owner).post("/api/projects/", {"name": project.name.upper(), "modality": "CT"})
    assert response.status_code == 400
    assert response.json()["errors"]["name"] == ["You already have a project with this name."]


def test_renaming_onto_another_of_ones_projects_is_refused_and_keeping_the_name_is_fine(
    client_for, project, other_project, owner
):
    from annotation_app.lib.roles import Role

    other_project.add_member(owner, Role.ADMIN)
    client = client_for(owner)
    clash = client.patch(f"/api/projects/{other_project.pk}/", {"name": project.name}, format="json")
    assert clash.status_code == 400
    same = client.patch(f"/api/projects/{project.pk}/", {"name": project.name, "description": "x"}, format="json")
    assert same.status_code == 200, same.content


def test_a_rename_onto_another_teams_name_is_accepted(client_for, project, other_project, owner):
    response = client_for(owner).patch(f"/api/projects/{project.pk}/", {"name": other_project.name}, format="json")
    assert response.status_code == 200, response.content
