"""manage.py load_demo --small: users, round, four ready cases with ground truth, lesion targets."""

import numpy as np
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.files.storage import default_storage
from django.core.management import call_command

from annotation_app.imaging.models import Case
from annotation_app.imaging.storage import open_case_array

pytestmark = pytest.mark.django_db


def test_the_small_demo_loads_every_kind_of_case_and_is_idempotent(capsys):
    from annotation_app.annotations.models import Target
    from annotation_app.rounds.models import Round

    call_command("load_demo", "--small")
    call_command("load_demo", "--small")
    cases = {c.name: c for c in Case.objects.all()}
    assert sorted(cases) == [
        "Demo CT (DICOM)", "Demo MRI (NIfTI)", "Demo MRI 2 (NIfTI, held out)", "Demo echo (MP4)",
        "Demo echo 2 (MP4, held out)", "Demo endoscopy (MP4)",
    ]  # fmt: skip  (the held-out pair: rounds/demo.py, tested in rounds/tests/test_demo_loop.py)
    assert all(c.status == "ready" for c in cases.values())
    assert all(c.assignee.username == "demo-annotator" for c in cases.values())
    ct = cases["Demo CT (DICOM)"]
    assert ct.image_meta["source_format"] == "dicom" and ct.modality == "CT"
    assert len(ct.image_meta["dicom"]["instances"]) == 12
    assert cases["Demo endoscopy (MP4)"].shape[-1] == 3  # RGB
    assert len(cases["Demo echo (MP4)"].shape) == 3  # grey
    for case in cases.values():
        with default_storage.open(case.image_meta["ground_truth_key"]) as handle:
            truth = np.load(handle)
        assert list(truth.shape) == case.shape[:3]
    targets = Target.objects.filter(case=ct)
    assert targets.count() >= 1 and all(t.status == "draft" and t.key_frame is not None for t in targets)
    with default_storage.open(ct.image_meta["ground_truth_key"]) as handle:
        truth = np.load(handle)
    first = targets.first()
    assert truth[first.key_frame].any()
    # each draft target says where its lesion is: a centroid on the key slice that lies on a lesion
    for target in targets:
        x, y = target.location["point"]
        assert truth[target.key_frame, int(y), int(x)] > 0, (target.pk, target.location)
    assert Round.objects.filter(project=ct.project, status="open").count() == 1
    assert authenticate(username="demo-reviewer", password="demo-pass-123") is not None
    from annotation_app.projects.models import can_create_projects

    demo = {u.username: u for u in get_user_model().objects.filter(username__startswith="demo-")}
    assert [name for name in sorted(demo) if can_create_projects(demo[name])] == ["demo-manager"]
    assert "demo-pass-123" in capsys.readouterr().out


def test_the_demo_ct_round_trips_the_synthetic_hounsfield_units():
    from annotation_app.imaging.demo import synthetic_module

    synthetic = synthetic_module()
    call_command("load_demo", "--small")
    ct = Case.objects.get(name="Demo CT (DICOM)")
    expected = synthetic.make_ct_volume(7, shape=(12, 64, 64), n_lesions=3).image
    np.testing.assert_array_equal(open_case_array(ct), expected)


def test_the_demo_loader_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'annotation_app.settings');"
        "django.setup(); import annotation_app.imaging.demo as d; d.synthetic_module();"
        "import annotation_app.imaging.api.views, annotation_app.imaging.ingest;"
        "import annotation_app.imaging.exports, annotation_app.imaging.imports, highdicom;"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr[-2000:]
