"""The Django admin lists every model, and append-only rows cannot be changed or deleted there."""

import uuid

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from annotation_app.annotations.models import InteractionEvent, MaskRevision, Target
from annotation_app.imaging.models import Case

CHANGELISTS = [
    "projects/project",
    "projects/membership",
    "imaging/case",
    "rounds/round",
    "rounds/modelversion",
    "rounds/trainingrun",
    "annotations/target",
    "annotations/prompt",
    "annotations/maskrevision",
    "annotations/interactionevent",
    "propagation/propagationjob",
]


@pytest.fixture
def admin_client_with_rows(project, owner, django_user_model):
    root = django_user_model.objects.create_superuser(username="root", password="root-pw-123")
    case = Case.objects.create(project=project, name="c", modality="CT", shape=[1, 2, 2])
    target = Target.objects.create(case=case, label="lesion")
    revision = MaskRevision.append(target, np.ones((1, 2, 2), dtype=bool), "human")
    event = InteractionEvent.objects.create(
        project=project, user=owner, kind="focus", client_event_id=uuid.uuid4(), client_ts=timezone.now()
    )
    client = Client()
    client.force_login(root)
    return client, revision, event


@pytest.mark.django_db
@pytest.mark.parametrize("model", CHANGELISTS)
def test_every_model_has_an_admin_list(admin_client_with_rows, model):
    client, _, _ = admin_client_with_rows
    assert client.get(f"/admin/{model}/").status_code == 200


@pytest.mark.django_db
def test_the_admin_cannot_delete_or_edit_append_only_rows(admin_client_with_rows):
    client, revision, event = admin_client_with_rows
    assert client.post(f"/admin/annotations/maskrevision/{revision.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/annotations/interactionevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert MaskRevision.objects.filter(pk=revision.pk).exists()
    assert InteractionEvent.objects.filter(pk=event.pk).exists()
    page = client.get(f"/admin/annotations/maskrevision/{revision.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
