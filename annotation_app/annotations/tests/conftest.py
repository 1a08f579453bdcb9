"""A ready 4x8x8 CT case in the shared project, with an open round."""

import pytest

from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.rounds.models import Round


@pytest.fixture
def case(project):
    return Case.objects.create(
        project=project, name="case 1", modality="CT", shape=[4, 8, 8], spacing=[2.0, 1.0, 1.0],
        status=CaseStatus.READY,
    )  # fmt: skip


@pytest.fixture
def open_round(project):
    return Round.objects.create(project=project, number=1)


@pytest.fixture
def target(case, open_round, annotator):
    from annotation_app.annotations.models import Target

    return Target.objects.create(case=case, label="lesion", round=open_round, created_by=annotator)
