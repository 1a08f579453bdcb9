"""Deleting a user never nulls nor removes what they made: a mask revision's author PROTECTs, and the
admin says why the account cannot be deleted and what to do instead (deactivate it)."""

import numpy as np
import pytest
from django.db.models import ProtectedError
from django.test import Client

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.imaging.models import Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def drawn(project, django_user_model):
    author = django_user_model.objects.create_user(username="drawer", password="drawer-pw-123")
    case = Case.objects.create(project=project, name="c", modality="CT", shape=[1, 2, 2], status="ready")
    target = Target.objects.create(case=case, label="lesion")
    revision = MaskRevision.append(target, np.ones((1, 2, 2), dtype=bool), "human", author=author)
    return author, revision


@pytest.fixture
def admin(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser(username="root", password="root-pw-123"))
    return client


def test_the_admin_refuses_to_delete_an_author_and_says_why(admin, drawn, django_user_model):
    author, revision = drawn
    page = admin.post(f"/admin/auth/user/{author.pk}/delete/", {"post": "yes"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Cannot delete user" in text and "Deactivate the account instead" in text
    assert django_user_model.objects.filter(pk=author.pk).exists()
    assert MaskRevision.objects.get(pk=revision.pk).author_id == author.pk


def test_the_bulk_delete_action_refuses_too(admin, drawn, django_user_model):
    author, revision = drawn
    page = admin.post(
        "/admin/auth/user/", {"action": "delete_selected", "_selected_action": [author.pk], "post": "yes"}
    )
    assert page.status_code == 200
    assert django_user_model.objects.filter(pk=author.pk).exists()
    assert MaskRevision.objects.get(pk=revision.pk).author_id == author.pk


def test_the_orm_refuses_as_well(drawn):
    author, revision = drawn
    with pytest.raises(ProtectedError):
        author.delete()
    assert MaskRevision.objects.get(pk=revision.pk).author_id == author.pk


def test_a_user_who_made_nothing_can_still_be_deleted(admin, django_user_model):
    idle = django_user_model.objects.create_user(username="idle", password="idle-pw-123")
    response = admin.post(f"/admin/auth/user/{idle.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not django_user_model.objects.filter(pk=idle.pk).exists()
