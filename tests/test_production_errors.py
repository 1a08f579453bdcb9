"""Production never shows Django's debug page and no message names a server path.

- gunicorn (the production server) refuses to start with DEBUG on, and the Docker image sets DEBUG=0;
- an unhandled error under /api/ answers a JSON 500 with no traceback, setting or path;
- messages users read (upload refusals, failed cases and jobs) have server folders cut out.
"""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from annotation_app.lib.redact import redact_paths

REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "TMPDIR")


def _gunicorn_check(tmp_path, **env_overrides) -> subprocess.CompletedProcess:
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(ANNOTATION_VAR_DIR=str(tmp_path / "var"), **env_overrides)
    env = {k: v for k, v in env.items() if v is not None}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    return subprocess.run(
        [str(gunicorn), "--check-config", "annotation_app.wsgi:application"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("debug", [None, "1", "true"])
def test_gunicorn_refuses_to_start_with_debug_on(tmp_path, debug):
    result = _gunicorn_check(tmp_path, DEBUG=debug)
    assert result.returncode != 0
    assert "will not start with DEBUG on" in result.stdout + result.stderr


def test_gunicorn_starts_with_production_settings(tmp_path):
    result = _gunicorn_check(
        tmp_path, DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="annotate.example.org"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_docker_image_runs_with_debug_off_and_ships_the_gunicorn_guard():
    dockerfile = (REPO / "Dockerfile").read_text()
    # the web image (the worker image is built FROM it, so it inherits DEBUG=0 and the guard)
    runtime = dockerfile.split("AS web", 1)[1].split("AS worker", 1)[0]
    assert re.search(r"^FROM web AS worker$", dockerfile, re.MULTILINE)
    assert re.search(r"^ENV DEBUG=0$", runtime, re.MULTILINE)
    assert runtime.index("ENV DEBUG=0") > runtime.index("collectstatic")  # the build step alone has DEBUG=1
    assert re.search(r"^COPY .*gunicorn\.conf\.py", runtime, re.MULTILINE)
    assert "gunicorn" in runtime.rsplit("CMD", 1)[1]


@pytest.mark.django_db
def test_an_unhandled_api_error_is_a_json_500_without_details(project, owner, settings, monkeypatch):
    from annotation_app.imaging import rendering
    from annotation_app.imaging.models import Case

    settings.DEBUG = False
    case = Case.objects.create(project=project, name="c", modality="CT", status="ready", image_key="k", shape=[1, 2, 2])

    def explode(*args, **kwargs):
        raise RuntimeError("boom reading /srv/annotate/var/media/cases/1/image.npy with SECRET_KEY=abc")

    monkeypatch.setattr(rendering, "render_thumbnail", explode)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(owner)
    response = client.get(f"/api/cases/{case.pk}/thumbnail/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    body = response.content.decode()
    assert "Internal server error" in response.json()["detail"]
    assert "boom" not in body and "/srv" not in body and "Traceback" not in body and "SECRET" not in body


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            'Unable to determine ImageIO reader for "{var}/tmp/upload-k3j2_x9/extracted/ct/a.nii"',
            'Unable to determine ImageIO reader for "ct/a.nii"',
        ),
        (
            "[Errno 2] No such file or directory: '{media}/uploads/3/ab12/scan.nii'",
            "[Errno 2] No such file or directory: 'uploads/3/ab12/scan.nii'",
        ),
        ("Invalid data found when processing input: '/opt/elsewhere/clip.mp4'", "... input: 'clip.mp4'"),
        ("model could not be loaded from /models/fine/v3.pt: bad", "model could not be loaded from v3.pt: bad"),
        ("ratio 1/2, type application/zip, see https://example.org/a/b", None),
    ],
)
def test_server_paths_are_cut_from_messages(settings, tmp_path, message, expected):
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    text = message.format(var=settings.VAR_DIR, media=settings.MEDIA_ROOT)
    redacted = redact_paths(text)
    if expected is None:
        assert redacted == text
    elif expected.startswith("... "):
        assert redacted.endswith(expected[4:])
    else:
        assert redacted == expected
    assert str(tmp_path) not in redacted


@pytest.mark.django_db
def test_a_failed_case_keeps_no_server_path_in_its_error(project, settings, tmp_path):
    from annotation_app.imaging.models import Case

    settings.MEDIA_ROOT = str(tmp_path / "media")
    case = Case.objects.create(project=project, name="c", modality="CT")
    case.mark_failed(f"internal error: FileNotFoundError: '{tmp_path}/media/cases/{case.pk}/image.npy'")
    assert case.error == f"internal error: FileNotFoundError: 'cases/{case.pk}/image.npy'"


@pytest.mark.django_db
def test_a_failed_export_keeps_no_server_path_in_its_error(project, settings, tmp_path):
    from annotation_app.exports.models import ExportJob

    settings.MEDIA_ROOT = str(tmp_path / "media")
    job = ExportJob.objects.create(project=project, format="nifti")
    job.fail(f"FileNotFoundError: [Errno 2] No such file or directory: '{tmp_path}/media/cases/4/image.npy'")
    assert job.error == "FileNotFoundError: [Errno 2] No such file or directory: 'cases/4/image.npy'"
