"""End-to-end latency of MedSAM2 propagation through the REST API and a real Celery worker (CPU).

What it measures, on a synthetic 40-slice CT volume with one lesion:
  1. cold: POST /api/targets/{id}/propagate/ with a box -> the key-frame mask readable from
     /api/propagation-jobs/{id}/frames/ (model load + first encode), and -> job succeeded (all slices);
  2. warm: a correction click on the same case -> key frame and full propagation again (the worker
     holds the model and the case's features; the job goes to the worker's own queue);
  3. a `key_frame` job on the warm case (prompted frames only).
Weights are random (no MedSAM2 download here): the timing is that of the architecture, not of a
trained model. With --checkpoint a real file is used instead.

Needs Postgres and Redis:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python benchmarks/bench_propagation_api.py \
      [--config medsam2_t512] [--checkpoint FILE] [--slices 40] [--size 256] [--threads 2]
It creates and drops its own database (`test_bench_propagation`) and uses a free Redis db number.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="medsam2_t512", help="medsam2 config name (default medsam2_t512)")
    p.add_argument("--checkpoint", default="", help="checkpoint file (default: random weights of --config)")
    p.add_argument("--slices", type=int, default=40)
    p.add_argument("--size", type=int, default=256, help="in-plane size of the synthetic volume")
    p.add_argument("--threads", type=int, default=2, help="torch threads in the worker")
    p.add_argument("--redis", default="redis://127.0.0.1:6379")
    p.add_argument("--timeout", type=float, default=900.0)
    return p.parse_args()


def claim_redis_db(base: str) -> tuple[str, object]:
    import redis

    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{db}")
        if client.set("bench:propagation:lock", "1", nx=True, ex=3600):
            return f"{base}/{db}", client
    raise SystemExit("no free Redis database number for the benchmark")


def main() -> int:
    args = parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print(
            "error: set DATABASE_URL to a Postgres server (the worker must share the database)",
            file=sys.stderr,
        )
        return 2
    broker, redis_client = claim_redis_db(args.redis)
    media = Path(tempfile.mkdtemp(prefix="bench-media-"))
    os.environ.update(
        {"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker, "MEDIA_ROOT": str(media), "DEBUG": "1"}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.settings_dict["TEST"]["NAME"] = "test_bench_propagation"
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    worker = None
    try:
        worker = start_worker(args, db_name, broker, media)
        run(args, worker)
    finally:
        if worker is not None:
            stop_worker(worker)
        connection.creation.destroy_test_db(db_name, verbosity=0)
        redis_client.flushdb()
    return 0


def start_worker(args, db_name: str, broker: str, media: Path):
    from django.db import connection

    from annotation_app.celery import app

    cfg = connection.settings_dict
    host, port = cfg.get("HOST") or "127.0.0.1", cfg.get("PORT") or 5432
    url = f"postgres://{cfg.get('USER') or 'postgres'}@{host}:{port}/{db_name}"
    node = f"bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MEDSAM2_DEVICE": "cpu",
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
    }
    log = open(media / "worker.log", "wb")
    cmd = [sys.executable, "-m", "celery", "-A", "annotation_app", "worker", "-n", node, "-Q", "gpu",
           "-c", "1", "--without-gossip", "--without-mingle", "-l", "WARNING"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"worker exited: {(media / 'worker.log').read_text()[-2000:]}")
        if any(node in r for r in app.control.ping(destination=[node], timeout=0.5)):
            return proc
    raise SystemExit("worker did not start in 120 s")


def stop_worker(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def make_fixture(args):
    """A project with the model, a 40-slice CT case with one lesion, an annotator and a target."""
    import numpy as np
    from django.contrib.auth import get_user_model

    from annotation_app.annotations.models import Prompt, Target
    from annotation_app.imaging.models import Case, CaseStatus
    from annotation_app.imaging.storage import save_case_array
    from annotation_app.lib.roles import Role
    from annotation_app.projects.models import Project
    from annotation_app.rounds.models import ModelVersion
    from medsam2.synthetic import make_ct_volume

    project = Project.objects.create(name="bench", modality="CT")
    user = get_user_model().objects.create_user("bench", password="bench-pw-123")
    project.add_member(user, Role.ANNOTATOR)
    checkpoint = args.checkpoint
    if not checkpoint:
        import torch

        from medsam2.build import build_model, save_checkpoint

        torch.manual_seed(0)
        checkpoint = str(Path(os.environ["MEDIA_ROOT"]) / f"{args.config}-random.pt")
        save_checkpoint(build_model(args.config), checkpoint)
    # A model version names its checkpoint by storage key (models/<project>/...), never by path.
    from django.core.files import File
    from django.core.files.storage import default_storage
    from django.utils import timezone

    with open(checkpoint, "rb") as handle:
        key = default_storage.save(f"models/{project.pk}/{Path(checkpoint).name}", File(handle))
    ModelVersion.objects.create(
        project=project, name=Path(checkpoint).name, checkpoint_key=key, config_name=args.config,
        verified_at=timezone.now(),
    ).activate()
    vol = make_ct_volume(seed=3, shape=(args.slices, args.size, args.size), n_lesions=1)
    case = Case.objects.create(
        project=project, name="ct", modality="CT", shape=list(vol.image.shape), status=CaseStatus.READY
    )
    case.image_key = save_case_array(case, vol.image)
    case.save(update_fields=["image_key"])
    lesion = vol.lesions[0].label
    key = vol.key_slice(lesion)
    target = Target.objects.create(case=case, label="lesion", key_frame=key, created_by=user)
    Prompt.objects.create(target=target, frame=key, kind="box", payload={"box": list(vol.box(lesion))}, author=user)
    extent = np.flatnonzero((vol.labels == lesion).any(axis=(1, 2)))
    return user, target, key, (int(extent[0]), int(extent[-1])), vol, lesion


def timed_job(client, target, key: int, timeout: float, body=None) -> dict:
    """POST propagate; poll /frames/ for the key frame and the job for completion."""
    from annotation_app.propagation.models import PropagationJob

    t0 = time.perf_counter()
    response = client.post(f"/api/targets/{target.pk}/propagate/", body or {}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    key_s = None
    while time.perf_counter() - t0 < timeout:
        if key_s is None:
            frames = client.get(f"/api/propagation-jobs/{job_id}/frames/?since=0").json()["frames"]
            if str(key) in frames:
                key_s = time.perf_counter() - t0
        job = PropagationJob.objects.get(pk=job_id)
        if job.is_finished:
            return {"job": job, "key_s": key_s, "total_s": time.perf_counter() - t0}
        time.sleep(0.05)
    raise SystemExit(f"job {job_id} did not finish in {timeout:.0f}s")


def run(args, worker) -> None:
    from rest_framework.test import APIClient

    from annotation_app.annotations.models import Prompt

    user, target, key, extent, vol, lesion = make_fixture(args)
    client = APIClient()
    client.force_authenticate(user)
    size = f"{args.slices} slices {args.size}x{args.size}"
    print(f"case: {size}, lesion on slices {extent[0]}..{extent[1]}, key {key}")
    print(f"model: {args.config} ({'checkpoint ' + args.checkpoint if args.checkpoint else 'random weights'})")
    print(f"worker: 1 process, {args.threads} torch threads, CPU\n")

    def report(name: str, r: dict) -> None:
        job = r["job"]
        t = job.timings
        rate = job.frames_done / t["propagate_s"] if t.get("propagate_s") else float("nan")
        key_s = r["key_s"] if r["key_s"] is not None else float("nan")
        print(
            f"{name:<28} status={job.status:<9} key-frame mask {key_s:6.2f} s | "
            f"all {job.frames_done:>3} frames {r['total_s']:6.2f} s | "
            f"worker: queued {t.get('queued_s', 0):.2f} s, "
            f"load {t.get('load_s', 0):.2f} s, first frame {t.get('first_frame_s', 0):.2f} s, "
            f"state {t.get('state_s', 0):.2f} s, propagate {t.get('propagate_s', 0):.2f} s "
            f"({rate:.2f} frames/s), features cached={bool(t.get('features_cached'))}, queue={job.queue}"
        )
        if job.status != "succeeded":
            print(f"  error: {job.error}")

    cold = timed_job(client, target, key, args.timeout)
    report("cold (box, full volume)", cold)
    rev = cold["job"].result_revision
    if rev is not None:
        pred, gt = rev.mask(), vol.labels == lesion
        dice = 2 * (pred & gt).sum() / max(1, pred.sum() + gt.sum())
        print(f"  (Dice vs. ground truth {dice:.3f}; random weights give no meaningful mask)")
    x0, y0, x1, y1 = vol.box(lesion)
    Prompt.objects.create(
        target=target,
        frame=key,
        kind="point",
        payload={"points": [[(x0 + x1) / 2, (y0 + y1) / 2]], "labels": [1]},
    )
    report("warm (click, full volume)", timed_job(client, target, key, args.timeout))
    Prompt.objects.create(target=target, frame=key, kind="point", payload={"points": [[x0, y0]], "labels": [0]})
    report("warm (click, key_frame job)", timed_job(client, target, key, args.timeout, {"kind": "key_frame"}))


if __name__ == "__main__":
    sys.exit(main())
