"""Shared fixtures: a project with an owner (admin), a manager, a reviewer, an annotator, and an
outsider who belongs only to another project. Worker-process fixtures live in tests/worker_fixtures.py."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation_app.lib.roles import Role

pytest_plugins = ["tests.worker_fixtures"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The production hasher is slow on purpose; tests create many users, so hash cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, **extra):
    return get_user_model().objects.create_user(username=username, password=f"{username}-pw-123", **extra)


@pytest.fixture
def project(db):
    from annotation_app.projects.models import Project

    return Project.objects.create(name="Liver lesions", modality="CT")


@pytest.fixture
def other_project(db):
    from annotation_app.projects.models import Project

    return Project.objects.create(name="Other project", modality="MR")


@pytest.fixture
def owner(project):
    user = _user("owner")
    project.add_member(user, Role.ADMIN)
    return user


@pytest.fixture
def manager(project):
    user = _user("manager")
    project.add_member(user, Role.MANAGER)
    return user


@pytest.fixture
def reviewer(project):
    user = _user("reviewer")
    project.add_member(user, Role.REVIEWER)
    return user


@pytest.fixture
def annotator(project):
    user = _user("annotator")
    project.add_member(user, Role.ANNOTATOR)
    return user


@pytest.fixture
def outsider(other_project):
    user = _user("outsider")
    other_project.add_member(user, Role.ADMIN)
    return user


@pytest.fixture
def client_for():
    """client_for(user) -> an APIClient logged in as that user (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        return client

    return make
