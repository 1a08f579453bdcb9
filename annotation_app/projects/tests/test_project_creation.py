"""Who may create projects (a setting), and roles reported per project rather than globally."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from annotation_app.projects.models import Project

BODY = {"name": "Knees", "modality": "MR"}


def _user(name, **extra):
    return get_user_model().objects.create_user(username=name, password=f"{name}-pw-123", **extra)


@pytest.mark.django_db
def test_by_default_a_plain_user_may_not_create_a_project(client_for):
    user = _user("plain")
    response = client_for(user).post("/api/projects/", BODY)
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]
    assert not Project.objects.filter(name="Knees").exists()
    assert client_for(user).get("/api/auth/me/").json()["can_create_projects"] is False


@pytest.mark.django_db
def test_staff_and_users_a_staff_member_allowed_create_projects_and_become_admin(client_for):
    staff = _user("staffer", is_staff=True)
    allowed = _user("allowed")
    allowed.user_permissions.add(Permission.objects.get(codename="add_project"))
    for i, user in enumerate([staff, get_user_model().objects.get(pk=allowed.pk)]):
        response = client_for(user).post("/api/projects/", {**BODY, "name": f"Knees {i}"})
        assert response.status_code == 201, response.content
        assert response.json()["my_role"] == "admin"
        assert client_for(user).get("/api/auth/me/").json()["can_create_projects"] is True


@pytest.mark.django_db
def test_the_setting_can_let_anyone_signed_in_create_projects(settings, client_for):
    settings.PROJECT_CREATORS = "anyone"
    assert client_for(_user("plain")).post("/api/projects/", BODY).status_code == 201


@pytest.mark.django_db
def test_me_lists_one_role_per_project(project, other_project, annotator, client_for):
    other_project.add_member(annotator, "admin")
    roles = client_for(annotator).get("/api/auth/me/").json()["memberships"]
    assert sorted((m["project_name"], m["role"]) for m in roles) == [("Liver lesions", "annotator"),
                                                                     ("Other project", "admin")]  # fmt: skip
