"""A full disk during an upload: a real, small filesystem (a 3 MiB tmpfs) holds both the staging folder
and the media storage, and an upload needs more than what is left.

Two stages, two right answers (lib/storage_full.py is the one rule for ENOSPC/EDQUOT):
- in the request (staging the upload, storing its original): 507 with a reason and no server path,
  and nothing is kept, no case row and no file, since the user is still there to read the answer;
- in the worker (writing the canonical array): the request had answered 202, so the case stays
  visible, `failed` with the same kind of reason, and neither its stored original nor any part of
  its array nor a staged file is left.
Afterwards an upload that fits goes through. Mounting needs root (this project's CI runs as root);
without it the tests fail with that reason.
"""

import gzip
import subprocess

import numpy as np
import pytest

from annotation_app.imaging.models import Case
from annotation_app.imaging.tests import helpers
from annotation_app.lib.storage_full import INGEST_REASON

pytestmark = pytest.mark.django_db
DISK_BYTES = 3 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path, settings):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the disk-full test: {done.stderr.decode().strip()}", pytrace=False)
    settings.MEDIA_ROOT = str(mount / "media")
    settings.VAR_DIR = mount / "var"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _upload(client, project, path, capture):
    with capture(execute=True):  # runs the ingest as the worker would, once the request has committed
        return helpers.upload(client, project, path)


def _a_small_upload_still_goes_through(client, project, tmp_path, capture):
    response = _upload(client, project, helpers.nifti(tmp_path / "small.nii", helpers.ct_volume()), capture)
    assert response.status_code == 202, response.content
    case = Case.objects.get(pk=response.json()[0]["id"])
    assert case.status == "ready", case.error


def test_an_upload_whose_original_does_not_fit_is_refused_with_507_and_nothing_is_kept(
    client_for, manager, project, tmp_path, small_disk, django_capture_on_commit_callbacks
):
    rng = np.random.default_rng(0)
    big = rng.integers(-1000, 1000, size=(48, 128, 128)).astype(np.int16)  # 1.57 MB, incompressible
    path = helpers.nifti(tmp_path / "big.nii", big)
    # The staged copy fits (1.57 of 3 MiB); storing the original next to it does not.
    assert DISK_BYTES / 2 < path.stat().st_size < DISK_BYTES
    response = _upload(client_for(manager), project, path, django_capture_on_commit_callbacks)

    assert response.status_code == 507, response.content
    body = response.json()
    assert body["detail"].startswith("the server's storage is full"), body
    assert body["code"] == "storage_full"
    assert str(tmp_path) not in response.content.decode() and "/tmp" not in response.content.decode()
    assert Case.objects.count() == 0
    assert _files_under(small_disk) == []  # neither the staged copy nor the part of the original

    _a_small_upload_still_goes_through(client_for(manager), project, tmp_path, django_capture_on_commit_callbacks)


def test_an_upload_larger_than_the_disk_is_refused_while_it_is_staged(
    client_for, manager, project, tmp_path, small_disk, django_capture_on_commit_callbacks
):
    rng = np.random.default_rng(1)
    path = tmp_path / "huge.nii"
    helpers.nifti(path, rng.integers(-1000, 1000, size=(100, 128, 128)).astype(np.int16))  # 3.3 MB
    assert path.stat().st_size > DISK_BYTES
    response = _upload(client_for(manager), project, path, django_capture_on_commit_callbacks)

    assert response.status_code == 507, response.content
    assert response.json()["detail"].startswith("the server's storage is full")
    assert Case.objects.count() == 0
    assert _files_under(small_disk) == []


def test_a_case_whose_array_does_not_fit_in_the_worker_fails_with_the_reason_and_keeps_no_file(
    client_for, manager, project, tmp_path, small_disk, django_capture_on_commit_callbacks
):
    # A gzipped NIfTI of 0.8 MB whose canonical array is 4.7 MB: the request stores it (202), the
    # conversion cannot store its array.
    rng = np.random.default_rng(2)
    volume = (rng.integers(0, 4, size=(64, 192, 192)) * 100 - 1000).astype(np.int16)
    raw = helpers.nifti(tmp_path / "smooth.nii", volume)
    path = tmp_path / "smooth.nii.gz"
    path.write_bytes(gzip.compress(raw.read_bytes(), compresslevel=9))
    assert path.stat().st_size < DISK_BYTES / 3 and volume.nbytes > DISK_BYTES
    response = _upload(client_for(manager), project, path, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content  # the request could not know
    case = Case.objects.get()
    assert case.status == "failed"
    assert case.error == INGEST_REASON
    assert "storage is full" in case.error and "/" not in case.error
    assert case.image_key == ""
    assert _files_under(small_disk) == []  # no original, no part of the array, no staged file
    detail = client_for(manager).get(f"/api/cases/{case.pk}/").json()
    assert detail["status"] == "failed" and detail["error"] == INGEST_REASON

    _a_small_upload_still_goes_through(client_for(manager), project, tmp_path, django_capture_on_commit_callbacks)
