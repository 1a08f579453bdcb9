"""Mask revisions and interaction events are append-only at every layer: API, model, database."""

import uuid

import numpy as np
import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone

from annotation_app.annotations.models import AppendOnlyError, InteractionEvent, MaskRevision, Target
from annotation_app.imaging.models import Case, CaseStatus


@pytest.fixture
def rows(project, owner):
    case = Case.objects.create(project=project, name="c", modality="CT", shape=[2, 4, 4], status=CaseStatus.READY)
    target = Target.objects.create(case=case, label="lesion")
    revision = MaskRevision.append(target, np.ones((2, 4, 4), dtype=bool), "human", author=owner)
    event = InteractionEvent.objects.create(
        project=project,
        case=case,
        target=target,
        user=owner,
        kind="focus",
        client_event_id=uuid.uuid4(),
        client_ts=timezone.now(),
    )
    return revision, event


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("collection", ["mask-revisions", "events"])
def test_no_api_path_changes_or_removes_a_stored_row(rows, owner, client_for, method, collection):
    revision, event = rows
    pk = revision.pk if collection == "mask-revisions" else event.pk
    response = getattr(client_for(owner), method)(f"/api/{collection}/{pk}/", {"note": "x"}, format="json")
    assert response.status_code == 405
    assert MaskRevision.objects.filter(pk=revision.pk, note="").exists()
    assert InteractionEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_even_a_superuser_cannot_delete_through_the_api(rows, client_for, django_user_model):
    root = django_user_model.objects.create_superuser(username="root", password="root-pw-123")
    revision, _ = rows
    assert client_for(root).delete(f"/api/mask-revisions/{revision.pk}/").status_code == 405


@pytest.mark.django_db
def test_saving_an_existing_row_again_raises(rows):
    for row in rows:
        with pytest.raises(AppendOnlyError):
            row.save()


@pytest.mark.django_db
def test_deleting_a_row_raises(rows):
    for row in rows:
        with pytest.raises(AppendOnlyError):
            row.delete()
    assert MaskRevision.objects.count() == 1 and InteractionEvent.objects.count() == 1


@pytest.mark.django_db
def test_deleting_the_target_is_refused_while_it_has_revisions(rows, owner, client_for):
    revision, _ = rows
    response = client_for(owner).delete(f"/api/targets/{revision.target_id}/")
    assert response.status_code == 409
    assert MaskRevision.objects.filter(pk=revision.pk).exists()


def _on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE annotations_maskrevision SET note = 'tampered'",
        "DELETE FROM annotations_maskrevision",
        "UPDATE annotations_interactionevent SET kind = 'custom'",
        "DELETE FROM annotations_interactionevent",
    ],
)
def test_on_postgres_the_database_refuses_raw_updates_and_deletes(rows, sql):
    if not _on_postgres():
        pytest.skip("the append-only triggers exist on Postgres only (the embedded SQLite default has none)")
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)
    assert MaskRevision.objects.filter(note="").count() == 1
    assert InteractionEvent.objects.filter(kind="focus").count() == 1


@pytest.mark.django_db
def test_on_postgres_a_bulk_queryset_update_is_refused_too(rows):
    if not _on_postgres():
        pytest.skip("the append-only triggers exist on Postgres only (the embedded SQLite default has none)")
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        MaskRevision.objects.update(note="bulk")
