"""The database itself refuses states the product must never reach (not only the API)."""

import numpy as np
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.imaging.models import Case
from annotation_app.lib.maskcodec import encode_mask
from annotation_app.projects.models import Membership
from annotation_app.rounds.models import ModelVersion, Round


@pytest.mark.django_db
def test_a_project_cannot_have_two_open_rounds(project):
    Round.objects.create(project=project, number=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Round.objects.create(project=project, number=2)
    Round.objects.create(project=project, number=2, status="closed")
    assert Round.objects.filter(project=project).count() == 2


@pytest.mark.django_db
def test_two_projects_may_each_have_an_open_round(project, other_project):
    Round.objects.create(project=project, number=1)
    Round.objects.create(project=other_project, number=1)
    assert Round.objects.filter(status="open").count() == 2


@pytest.mark.django_db
def test_round_numbers_are_unique_per_project(project):
    Round.objects.create(project=project, number=1, status="closed")
    with pytest.raises(IntegrityError), transaction.atomic():
        Round.objects.create(project=project, number=1, status="closed")


@pytest.mark.django_db
def test_a_project_cannot_have_two_active_models(project):
    prefix = f"models/{project.pk}/"
    ModelVersion.objects.create(project=project, name="v1", checkpoint_key=f"{prefix}a.pt", status="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(project=project, name="v2", checkpoint_key=f"{prefix}b.pt", status="active")
    assert ModelVersion.objects.filter(project=project, status="active").count() == 1


@pytest.mark.django_db
def test_activate_moves_the_single_active_slot(project):
    prefix = f"models/{project.pk}/"
    v1 = ModelVersion.objects.create(project=project, name="v1", checkpoint_key=f"{prefix}a.pt", status="active")
    v2 = ModelVersion.objects.create(
        project=project, name="v2", checkpoint_key=f"{prefix}b.pt", verified_at=timezone.now()
    )
    v2.activate()
    v1.refresh_from_db()
    assert (v1.status, v2.status) == ("retired", "active")


@pytest.mark.django_db
def test_two_revisions_of_a_target_cannot_share_a_number(project):
    case = Case.objects.create(project=project, name="c", modality="CT", shape=[1, 2, 2])
    target = Target.objects.create(case=case, label="lesion")
    encoded = encode_mask(np.ones((1, 2, 2), dtype=bool))
    fields = {
        "target": target,
        "source": "human",
        "data": encoded.data,
        "bbox": encoded.bbox,
        "shape": encoded.shape,
        "voxel_count": encoded.voxel_count,
    }
    MaskRevision.objects.create(number=1, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        MaskRevision.objects.create(number=1, **fields)
    assert MaskRevision.append(target, np.zeros((1, 2, 2), dtype=bool), "human").number == 2


@pytest.mark.django_db
def test_a_user_has_one_membership_per_project(project, annotator):
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(project=project, user=annotator, role="reviewer")
