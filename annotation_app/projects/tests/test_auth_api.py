"""Sign-in, sign-out, identity and token endpoints under /api/auth/."""

import pytest
from django.test import Client
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_login_with_json_sets_a_session_and_me_lists_memberships(annotator, project):
    client = APIClient()
    response = client.post("/api/auth/login/", {"username": "annotator", "password": "annotator-pw-123"})
    assert response.status_code == 200
    assert response.json() == {"id": annotator.pk, "username": "annotator"}
    me = client.get("/api/auth/me/").json()
    assert me["username"] == "annotator"
    assert me["is_superuser"] is False
    assert me["memberships"] == [{"project": project.pk, "project_name": "Liver lesions", "role": "annotator"}]


@pytest.mark.django_db
def test_login_with_a_wrong_password_is_a_400_with_a_reason(annotator):
    response = APIClient().post("/api/auth/login/", {"username": "annotator", "password": "nope"})
    assert response.status_code == 400
    assert response.json()["detail"] == "Wrong username or password."


@pytest.mark.django_db
def test_login_refuses_unknown_fields(annotator):
    response = APIClient().post(
        "/api/auth/login/", {"username": "annotator", "password": "annotator-pw-123", "remember": True}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"remember": ["Unknown field."]}


@pytest.mark.django_db
def test_login_from_a_browser_needs_the_csrf_cookie_that_me_sets(annotator):
    browser = Client(enforce_csrf_checks=True)
    body = {"username": "annotator", "password": "annotator-pw-123"}
    refused = browser.post("/api/auth/login/", body, content_type="application/json")
    assert refused.status_code == 403
    anonymous_me = browser.get("/api/auth/me/")
    assert anonymous_me.status_code in (401, 403)
    token = browser.cookies["csrftoken"].value
    accepted = browser.post("/api/auth/login/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200
    assert browser.get("/api/auth/me/").json()["username"] == "annotator"


@pytest.mark.django_db
def test_logout_ends_the_session(annotator):
    client = APIClient()
    client.post("/api/auth/login/", {"username": "annotator", "password": "annotator-pw-123"})
    assert client.post("/api/auth/logout/").status_code == 204
    assert client.get("/api/auth/me/").status_code in (401, 403)


@pytest.mark.django_db
def test_a_token_from_the_token_endpoint_authenticates_requests(annotator, project):
    response = APIClient().post("/api/auth/token/", {"username": "annotator", "password": "annotator-pw-123"})
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    projects = client.get("/api/projects/").json()
    assert [p["id"] for p in projects["results"]] == [project.pk]


@pytest.mark.django_db
def test_the_token_endpoint_refuses_bad_credentials_with_json(annotator):
    response = APIClient().post("/api/auth/token/", {"username": "annotator", "password": "wrong"})
    assert response.status_code == 400
    assert "errors" in response.json()


@pytest.mark.django_db
def test_a_csrf_refusal_is_json_with_the_reason(annotator):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(
        "/api/auth/login/",
        {"username": "annotator", "password": "annotator-pw-123"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "CSRF check failed" in response.json()["detail"]


@pytest.mark.django_db
def test_an_unknown_api_path_is_a_json_404_when_debug_is_off(settings, client):
    settings.DEBUG = False
    response = client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No API endpoint at /api/no-such-thing/."}


@pytest.mark.django_db
def test_repeated_wrong_passwords_are_slowed_down_but_other_users_are_not(annotator, reviewer):
    from django.core.cache import cache

    from annotation_app.projects.api.auth import MAX_FAILURES

    cache.clear()
    client = APIClient()
    for _ in range(MAX_FAILURES):
        assert client.post("/api/auth/login/", {"username": "annotator", "password": "bad"}).status_code == 400
    locked = client.post("/api/auth/login/", {"username": "annotator", "password": "annotator-pw-123"})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.json()["detail"]
    other = client.post("/api/auth/login/", {"username": "reviewer", "password": "reviewer-pw-123"})
    assert other.status_code == 200
    cache.clear()
