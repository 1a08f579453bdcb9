"""Projects and memberships through the API: ownership, validation, and no privilege escalation."""

import pytest
from django.contrib.auth import get_user_model

from annotation_app.projects.models import Membership, Project


@pytest.mark.django_db
def test_whoever_creates_a_project_becomes_its_admin(outsider, client_for):
    outsider.is_staff = True  # who may create projects at all: test_project_creation.py
    outsider.save(update_fields=["is_staff"])
    response = client_for(outsider).post("/api/projects/", {"name": "Knees", "modality": "MR"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["my_role"] == "admin"
    assert body["labels"] == [{"name": "lesion", "color": "#ff4d4f"}]
    assert Project.objects.get(pk=body["id"]).role_of(outsider) == "admin"


@pytest.mark.django_db
def test_each_project_reports_the_callers_own_role(project, reviewer, client_for):
    rows = client_for(reviewer).get("/api/projects/").json()["results"]
    assert [(r["name"], r["my_role"]) for r in rows] == [("Liver lesions", "reviewer")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "labels",
    [[], [{"name": "a"}, {"name": "a"}], [{"name": "a", "color": "red"}], [{"colour": "#ffffff"}], "lesion"],
)
def test_malformed_label_lists_are_refused(owner, client_for, labels):
    response = client_for(owner).post("/api/projects/", {"name": "P", "modality": "CT", "labels": labels})
    assert response.status_code == 400
    assert "labels" in response.json()["errors"]


@pytest.mark.django_db
def test_settings_accept_only_known_keys_with_sane_values(project, manager, client_for):
    client = client_for(manager)
    url = f"/api/projects/{project.pk}/"
    assert client.patch(url, {"settings": {"idle_threshold_s": 45}}).json()["settings"] == {"idle_threshold_s": 45}
    assert client.patch(url, {"settings": {"idle_threshold_s": 0}}).status_code == 400
    assert client.patch(url, {"settings": {"theme": "dark"}}).status_code == 400


@pytest.mark.django_db
def test_a_project_with_cases_cannot_be_deleted(project, owner, client_for):
    from annotation_app.imaging.models import Case

    Case.objects.create(project=project, name="c", modality="CT")
    response = client_for(owner).delete(f"/api/projects/{project.pk}/")
    assert response.status_code == 409
    assert Project.objects.filter(pk=project.pk).exists()


@pytest.mark.django_db
def test_a_manager_adds_members_by_username(project, manager, client_for):
    get_user_model().objects.create_user(username="newbie", password="x-pw-123456")
    response = client_for(manager).post(
        "/api/memberships/", {"project": project.pk, "username": "newbie", "role": "reviewer"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["username"] == "newbie"
    assert Membership.objects.get(pk=response.json()["id"]).role == "reviewer"


@pytest.mark.django_db
def test_adding_an_unknown_user_names_the_field(project, manager, client_for):
    response = client_for(manager).post(
        "/api/memberships/", {"project": project.pk, "username": "ghost", "role": "annotator"}
    )
    assert response.status_code == 400
    assert "username" in response.json()["errors"]


@pytest.mark.django_db
def test_adding_someone_twice_is_a_conflict(project, manager, annotator, client_for):
    response = client_for(manager).post(
        "/api/memberships/", {"project": project.pk, "username": "annotator", "role": "reviewer"}
    )
    assert response.status_code == 409


@pytest.mark.django_db
def test_a_manager_cannot_make_anyone_admin(project, manager, annotator, client_for):
    membership = Membership.objects.get(project=project, user=annotator)
    response = client_for(manager).patch(f"/api/memberships/{membership.pk}/", {"role": "admin"})
    assert response.status_code == 403
    assert Membership.objects.get(pk=membership.pk).role == "annotator"


@pytest.mark.django_db
def test_a_manager_cannot_demote_or_remove_an_admin(project, manager, owner, client_for):
    membership = Membership.objects.get(project=project, user=owner)
    client = client_for(manager)
    assert client.patch(f"/api/memberships/{membership.pk}/", {"role": "annotator"}).status_code == 403
    assert client.delete(f"/api/memberships/{membership.pk}/").status_code == 403


@pytest.mark.django_db
def test_the_last_admin_cannot_leave_or_step_down(project, owner, client_for):
    membership = Membership.objects.get(project=project, user=owner)
    client = client_for(owner)
    assert client.patch(f"/api/memberships/{membership.pk}/", {"role": "manager"}).status_code == 409
    assert client.delete(f"/api/memberships/{membership.pk}/").status_code == 409
    assert Membership.objects.get(pk=membership.pk).role == "admin"


@pytest.mark.django_db
def test_a_membership_cannot_be_moved_to_another_user(project, manager, annotator, reviewer, client_for):
    membership = Membership.objects.get(project=project, user=annotator)
    response = client_for(manager).patch(f"/api/memberships/{membership.pk}/", {"username": "reviewer"})
    assert response.status_code == 400
    assert response.json()["errors"]["username"] == ["This field cannot be changed after creation."]
