"""manage.py ingest: paths and server-side folders go through the same checks as uploads."""

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation_app.imaging.models import Case
from annotation_app.imaging.tests import helpers

pytestmark = pytest.mark.django_db


def test_it_imports_a_dicom_folder_and_a_nifti_file(project, tmp_path, capsys):
    helpers.dicom_series(tmp_path / "in" / "series")
    nifti = helpers.nifti(tmp_path / "in" / "mr.nii.gz", np.zeros((3, 8, 8), np.int16))
    call_command("ingest", str(project.pk), str(tmp_path / "in" / "series"), str(nifti), "--modality", "MR")
    cases = list(Case.objects.order_by("id"))
    assert [(c.modality, c.status, c.shape) for c in cases] == [
        ("CT", "ready", [6, 24, 32]),
        ("MR", "ready", [3, 8, 8]),
    ]
    assert "ready" in capsys.readouterr().out


def test_folder_import_skips_what_was_already_imported(project, tmp_path, settings, capsys):
    (tmp_path / "drop").mkdir()
    helpers.nifti(tmp_path / "drop" / "a.nii", np.zeros((2, 4, 4), np.int16))
    helpers.nifti(tmp_path / "drop" / "b.nii", np.ones((2, 4, 4), np.int16))
    settings.IMPORT_DIR = str(tmp_path / "drop")
    call_command("ingest", str(project.pk), "--folder")
    call_command("ingest", str(project.pk), "--folder")
    assert Case.objects.count() == 2
    assert "already imported" in capsys.readouterr().out


def test_a_bad_file_is_a_one_line_error_and_a_failing_exit(project, tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"garbage" * 40)
    with pytest.raises(CommandError, match="could not be imported"):
        call_command("ingest", str(project.pk), str(bad))
    assert Case.objects.count() == 0


def test_an_unknown_project_is_an_error(db, tmp_path):
    with pytest.raises(CommandError, match="no project with id 999"):
        call_command("ingest", "999", str(tmp_path))
