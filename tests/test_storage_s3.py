"""Two workers with no shared disk, storage through an S3 endpoint (moto's standalone server).

The web process (this test), an ingest worker (queue default) and a propagation worker (queue gpu) each
have their own MEDIA_ROOT and VAR_DIR and all run with STORAGE_BACKEND=s3 against the same bucket: an
upload is stored in S3 by the request, converted by one worker, propagated by the other, and its
slices served by the web process, each reading what it needs from S3 into its own cache. Nothing is
written to any MEDIA_ROOT.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from annotation_app.annotations.models import MaskRevision
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.imaging.tests.helpers import nifti, upload
from annotation_app.propagation.models import JobStatus
from annotation_app.propagation.tests.factories import blob_volume, make_target, tiny_model_version
from tests.test_propagation_worker import WORKER_ENV, finished, propagate, wait_for

pytestmark = pytest.mark.slow

BUCKET = "annotations-test"
CREDENTIALS = {"S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing", "S3_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """moto's S3 server on a free port, with an empty bucket; stopped at the end of the module."""
    import boto3

    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )

    def up():
        if proc.poll() is not None:
            pytest.fail(f"moto server exited: {log.read_text()[-2000:]}", pytrace=False)
        try:
            client.list_buckets()
            return True
        except Exception:
            return False

    try:
        wait_for(up, timeout=60, interval=0.2, what=f"moto S3 server on port {port}")
        client.create_bucket(Bucket=BUCKET)
        yield url, client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def s3_storage(s3_endpoint, settings, tmp_path):
    """This process on S3 (own empty MEDIA_ROOT and VAR_DIR), and the environment for workers to be too."""
    url, client = s3_endpoint
    settings.STORAGE_BACKEND = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": url,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
            },
        },
    }
    settings.MEDIA_ROOT = str(tmp_path / "web" / "media")
    settings.VAR_DIR = tmp_path / "web" / "var"
    settings.IMAGING_INGEST_EAGER = False
    env = {"STORAGE_BACKEND": "s3", "S3_ENDPOINT_URL": url, "S3_BUCKET": BUCKET, **CREDENTIALS}
    yield env, client
    listing = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    if listing:
        client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": o["Key"]} for o in listing]})


def _own_folders(tmp_path: Path, name: str) -> dict[str, str]:
    return {"MEDIA_ROOT": str(tmp_path / name / "media"), "ANNOTATION_VAR_DIR": str(tmp_path / name / "var")}


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_a_case_ingested_on_one_worker_is_propagated_on_another_with_no_shared_disk(
    start_celery_worker, s3_storage, project, manager, annotator, client_for, tmp_path
):
    env, client = s3_storage
    version = tiny_model_version(project, tmp_path / "model")  # stored in S3 like any checkpoint
    ingester = start_celery_worker(queues=("default",), env={**env, **_own_folders(tmp_path, "ingest")}, name="s3-in")
    propagator = start_celery_worker(
        queues=("gpu",), env={**WORKER_ENV, **env, **_own_folders(tmp_path, "gpu")}, name="s3-gpu"
    )

    volume = blob_volume()  # 12 x 64 x 64 int16
    started = time.monotonic()
    response = upload(client_for(manager), project, nifti(tmp_path / "blob.nii", volume))
    assert response.status_code == 202, response.content
    case = Case.objects.get(pk=response.json()[0]["id"])

    def ready():
        case.refresh_from_db()
        return case.status != CaseStatus.INGESTING

    try:
        wait_for(ready, timeout=120, what=f"case {case.pk} to be converted")
    except AssertionError:
        print(ingester.log(8000))
        raise
    ingest_s = time.monotonic() - started
    assert case.status == CaseStatus.READY, case.error
    assert case.ingest_worker.startswith(f"{ingester.name}#")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert case.image_key in keys and case.original_key in keys and version.checkpoint_key in keys

    target = make_target(case, annotator, box=(22, 22, 42, 42), frame=int(case.shape[0]) // 2)
    started = time.monotonic()
    job = finished(propagate(client_for, annotator, target), timeout=180, worker=propagator)
    propagate_s = time.monotonic() - started
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.worker.startswith(f"{propagator.name}#")
    assert MaskRevision.objects.filter(target=target).count() == 1
    assert job.frames_done == case.shape[0]

    response = client_for(annotator).get(f"/api/cases/{case.pk}/slice/?axis=axial&index=5&format=raw")
    assert response.status_code == 200, response.content
    expected = np.asarray(volume[5], dtype="<i2").tobytes()
    assert response.content == expected

    # No shared disk was used: every MEDIA_ROOT is empty; each process cached the array it read.
    for name in ("web", "ingest", "gpu"):
        assert _files(tmp_path / name / "media") == [], name
    assert _files(tmp_path / "gpu" / "var" / "cache") == sorted([case.image_key, version.checkpoint_key]), (
        "the propagation worker read the array and the checkpoint from S3"
    )
    assert case.image_key in _files(tmp_path / "web" / "var" / "cache")
    print(f"\nS3: ingest {ingest_s:.1f} s, propagation {propagate_s:.1f} s ({job.frames_done} frames)")
