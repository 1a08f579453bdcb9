"""manage.py load_demo --small leaves the learning loop ready to try: the bootstrap model as version 1,
round 1 closed with accepted MRI and echo masks and two held-out cases, round 2 open on the CT lesions."""

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from annotation_app.annotations.models import Target
from annotation_app.rounds.models import ModelVersion, Round

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


def test_the_demo_has_a_closed_round_to_train_and_an_open_round_pinned_to_the_bootstrap_model():
    call_command("load_demo", "--small")
    call_command("load_demo", "--small")  # idempotent
    bootstrap = ModelVersion.objects.get()
    assert (bootstrap.name, bootstrap.status, bootstrap.config_name) == ("bootstrap", "active", "bootstrap_s")
    assert default_storage.exists(bootstrap.checkpoint_key) and bootstrap.usable
    first, second = Round.objects.order_by("number")
    assert (first.number, first.status, first.model_version) == (1, "closed", bootstrap)
    assert (second.number, second.status, second.model_version) == (2, "open", bootstrap)
    accepted = Target.objects.filter(round=first, status="accepted").select_related("case")
    assert {t.case.modality for t in accepted} == {"MR", "US"}
    held = {t.case.name for t in accepted if t.revisions.get().pk in first.snapshot["held_out"]}
    assert held == {"Demo MRI 2 (NIfTI, held out)", "Demo echo 2 (MP4, held out)"}
    assert len(first.snapshot["train"]) + len(first.snapshot["held_out"]) == accepted.count()
    assert {t.label for t in accepted if t.case.modality == "US"} == {"left ventricle"}
    assert Target.objects.filter(round=second, case__modality="CT", status="draft").exists()
