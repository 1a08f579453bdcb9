"""Slice serving latency: GET /api/cases/{id}/slice/ for a 512x512 CT slice (goal: p50 < 30 ms).

Runs the real view through Django's test client (authentication, scoping query, ETag, memory-mapped
read, windowing, encoding) on a synthetic abdominal CT (medsam2.synthetic, int16 HU) of
--slices x 512 x 512: PNG, WebP and raw int16 axial slices, a coronal PNG (strided read across
slices) and the 304 path (If-None-Match). Also times the rendering alone (no HTTP, no database).

    python benchmarks/bench_slices.py [--slices 64] [--repeats 60]

With no DATABASE_URL it uses a throwaway SQLite database in a temporary folder; with one (Postgres) it
creates and drops a test database of its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slices", type=int, default=64)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=60, help="requests per variant")
    return p.parse_args()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-slices-"))
    os.environ.setdefault("ANNOTATION_VAR_DIR", str(workdir))
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
    import django

    django.setup()
    import numpy as np
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from tqdm import tqdm

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    uses_server = connection.vendor != "sqlite"
    if uses_server:
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
    else:
        call_command("migrate", verbosity=0)
    try:
        from annotation_app.imaging import rendering
        from annotation_app.imaging.models import Case
        from annotation_app.imaging.storage import save_case_array
        from annotation_app.projects.models import Project

        user = get_user_model().objects.create_user(username="bench", password="bench-pw-123")
        project = Project.objects.create(name=f"bench {time.time()}", modality="CT")
        project.add_member(user, "annotator")
        from medsam2.synthetic import make_ct_volume

        # a realistic abdomen (compresses as CT does): 16 distinct slices repeated to --slices
        block = make_ct_volume(0, shape=(16, args.size, args.size), n_lesions=2).image
        volume = np.ascontiguousarray(np.resize(block, (args.slices, args.size, args.size)))
        case = Case.objects.create(
            project=project,
            name="bench",
            modality="CT",
            shape=list(volume.shape),
            status="ready",
            image_meta={"rescale": {"slope": 1.0, "intercept": 0.0}, "window": {"level": 40, "width": 400}},
        )
        case.image_key = save_case_array(case, volume)
        case.save()
        client = Client()
        client.force_login(user)
        variants = [
            ("axial png", "axial", "png"),
            ("axial webp", "axial", "webp"),
            ("axial raw int16", "axial", "raw"),
            ("coronal png", "coronal", "png"),
        ]
        print(
            f"volume {volume.shape} int16, {args.repeats} requests per variant, database {connection.vendor}"
        )
        print(f"{'variant':<22}{'p50 ms':>9}{'p95 ms':>9}{'bytes':>10}")
        for label, axis, fmt in variants:
            times, size = [], 0
            client.get(f"/api/cases/{case.pk}/slice/?axis={axis}&index=0&format={fmt}")  # warm the map
            for i in tqdm(range(args.repeats), desc=label, leave=False):
                index = (i * 7) % (args.slices if axis == "axial" else args.size)
                start = time.perf_counter()
                response = client.get(
                    f"/api/cases/{case.pk}/slice/?axis={axis}&index={index}&format={fmt}&wl=40&ww=400"
                )
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.content[:200]
                size = len(response.content)
            p50, p95 = percentiles(times)
            print(f"{label:<22}{p50:>9.1f}{p95:>9.1f}{size:>10}")
        first = client.get(f"/api/cases/{case.pk}/slice/?index=5&format=png")
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            response = client.get(
                f"/api/cases/{case.pk}/slice/?index=5&format=png", HTTP_IF_NONE_MATCH=first["ETag"]
            )
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 304
        p50, p95 = percentiles(times)
        print(f"{'304 not modified':<22}{p50:>9.1f}{p95:>9.1f}{0:>10}")
        case.refresh_from_db()
        for fmt in ("png", "webp", "raw"):
            times = []
            for i in range(args.repeats):
                start = time.perf_counter()
                rendering.render_slice(case, "axial", i % args.slices, fmt, 40.0, 400.0)
                times.append((time.perf_counter() - start) * 1000)
            p50, p95 = percentiles(times)
            print(f"{'render only ' + fmt:<22}{p50:>9.1f}{p95:>9.1f}")
    finally:
        if uses_server:
            connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
