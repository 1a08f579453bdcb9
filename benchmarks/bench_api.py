"""Latency of the annotation API's heavier requests, in-process (Django test client), on a throwaway
SQLite database: a 500-target list, mask frames of a 300x512x512 case, saving edited frames, and a
500-event timing batch. Prints p50/p95 per request.

    python benchmarks/bench_api.py [--repeats 7]

It never touches a configured database: DATABASE_URL is ignored and a temporary var dir is used.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.pop("DATABASE_URL", None)
os.environ.pop("CELERY_BROKER_URL", None)
os.environ["ANNOTATION_VAR_DIR"] = tempfile.mkdtemp(prefix="bench-api-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from annotation_app.annotations.models import MaskRevision, Target  # noqa: E402
from annotation_app.imaging.models import Case  # noqa: E402
from annotation_app.lib.maskcodec import encode_slice_rle  # noqa: E402
from annotation_app.projects.models import Project  # noqa: E402
from annotation_app.rounds.models import Round  # noqa: E402

SHAPE = (300, 512, 512)


def ellipsoid() -> np.ndarray:
    zz, yy, xx = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    return ((zz - 150) / 20.0) ** 2 + ((yy - 256) / 60.0) ** 2 + ((xx - 240) / 50.0) ** 2 <= 1


def measure(label: str, request, repeats: int) -> None:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = request()
        times.append(time.perf_counter() - start)
        if response.status_code >= 300:
            raise SystemExit(f"{label}: HTTP {response.status_code} {response.content[:200]!r}")
    p95 = float(np.percentile(times, 95))
    print(f"{label:<58} p50 {statistics.median(times) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(username="bench", password=uuid.uuid4().hex)
    project = Project.objects.create(name="bench", modality="CT")
    project.add_member(user, "manager")
    case = Case.objects.create(project=project, name="big", modality="CT", shape=list(SHAPE), status="ready")
    round_ = Round.objects.create(project=project, number=1)
    Target.objects.bulk_create([Target(case=case, label="lesion", round=round_) for _ in range(500)])
    target = Target.objects.filter(case=case).first()
    revision = MaskRevision.append(target, ellipsoid(), "model")
    client = APIClient()
    client.force_authenticate(user)

    frame = np.zeros(SHAPE[1:], dtype=bool)
    frame[200:300, 180:300] = True
    edit = {"target": target.pk, "slices": {str(k): {"rle": encode_slice_rle(frame)} for k in range(140, 145)}}

    def events():
        now = timezone.now().isoformat()
        batch = [
            {"client_event_id": str(uuid.uuid4()), "kind": "edit_stroke", "client_ts": now, "target": target.pk}
            for _ in range(500)
        ]
        return client.post("/api/events/", batch, format="json")

    n = args.repeats
    measure("GET /api/targets/?page_size=500 (500 targets)", lambda: client.get("/api/targets/?page_size=500"), n)
    measure(
        "GET mask-revisions/{id}/frames/ (300x512x512, all)",
        lambda: client.get(f"/api/mask-revisions/{revision.pk}/frames/"),
        n,
    )
    measure(
        "GET mask-revisions/{id}/frames/?start=140&stop=160",
        lambda: client.get(f"/api/mask-revisions/{revision.pk}/frames/?start=140&stop=160"),
        n,
    )
    measure("POST /api/mask-revisions/ (5 edited frames)", lambda: client.post("/api/mask-revisions/", edit), n)
    measure("POST /api/events/ (batch of 500)", events, n)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(os.environ["ANNOTATION_VAR_DIR"], ignore_errors=True)
