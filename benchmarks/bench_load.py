"""Load: N simulated annotators (Locust) against gunicorn + Postgres + Redis, as in production.

Creates a throwaway Postgres database (dropped afterwards) and media folder, seeds one project with N
annotators, a 512x512 CT case, one target per annotator with a model proposal and a finished
propagation job, starts gunicorn with the production settings (DEBUG off, the compose file's worker
count), runs benchmarks/load/locustfile.py headless for --seconds, and prints p50/p95/p99 per endpoint,
the error count and whether every non-model endpoint met the goal (p99 < 300 ms).

    python benchmarks/bench_load.py [--users 20] [--seconds 60] [--workers 3] [--slices 64]

Needs Postgres at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; only its server is
used) and Redis at CELERY_BROKER_URL (database 14 is used and emptied). Sends traffic only to 127.0.0.1
and stops by itself.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
GOAL_P99_MS = 300.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--workers", type=int, default=3, help="gunicorn workers (docker-compose.yml uses 3)")
    p.add_argument("--slices", type=int, default=64)
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin_dsn(url: str) -> dict:
    u = urlparse(url)
    return {"host": u.hostname or "127.0.0.1", "port": u.port or 5432, "user": u.username or "postgres",
            "password": u.password or None, "dbname": "postgres"}


def run_sql(dsn: dict, statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(**dsn)
    conn.autocommit = True
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


def seed(users: int, slices: int) -> dict:
    """Runs in this process with DATABASE_URL pointing at the throwaway database."""
    import django

    django.setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from annotation_app.annotations.models import MaskRevision, Target
    from annotation_app.imaging.models import Case
    from annotation_app.imaging.storage import save_case_array
    from annotation_app.lib.maskcodec import encode_slice_rle
    from annotation_app.projects.models import Project
    from annotation_app.propagation.models import JobStatus, PropagationJob
    from annotation_app.rounds.models import Round
    from medsam2.synthetic import make_ct_volume

    # every simulated annotator edits its own target in one shared case, so the case is open to all
    project = Project.objects.create(name="load", modality="CT")
    project.settings = {**project.settings, "annotators_edit_unassigned": True}
    project.save(update_fields=["settings"])
    block = make_ct_volume(0, shape=(16, 512, 512), n_lesions=2).image
    volume = np.ascontiguousarray(np.resize(block, (slices, 512, 512)))
    case = Case.objects.create(
        project=project, name="load CT", modality="CT", shape=list(volume.shape), status="ready",
        spacing=[2.0, 0.8, 0.8], origin=[0.0, 0.0, 0.0], direction=[1, 0, 0, 0, 1, 0, 0, 0, 1],
        image_meta={"rescale": {"slope": 1.0, "intercept": 0.0}, "window": {"level": 40, "width": 400}},
    )
    case.image_key = save_case_array(case, volume)
    case.save()
    round_ = Round.objects.create(project=project, number=1)
    mask = np.zeros(volume.shape, dtype=bool)
    mask[slices // 2 - 6 : slices // 2 + 6, 200:280, 220:300] = True
    frame = np.zeros((512, 512), dtype=bool)
    frame[205:285, 215:305] = True
    edit = {str(k): {"rle": encode_slice_rle(frame)} for k in range(slices // 2 - 2, slices // 2 + 1)}
    people = []
    for i in range(users):
        name = f"load-annotator-{i:02d}"
        password = f"{name}-pw-123"
        user = get_user_model().objects.create_user(username=name, password=password)
        project.add_member(user, "annotator")
        target = Target.objects.create(case=case, label="lesion", round=round_, created_by=user,
                                       key_frame=slices // 2)
        revision = MaskRevision.append(target, mask, "model")
        job = PropagationJob.objects.create(
            target=target, status=JobStatus.SUCCEEDED, idempotency_key=f"load-{i}", requested_by=user,
            frames_total=slices, frames_done=slices, progress=1.0, result_revision=revision,
        )
        people.append({"username": name, "password": password, "target": target.pk, "job": job.pk,
                       "revision": revision.pk, "cookies": signed_in_cookies(user)})
    return {"project": project.pk, "case": {"id": case.pk, "depth": slices}, "users": people, "edit": edit}


def signed_in_cookies(user) -> dict[str, str]:
    """Session and CSRF cookies of a user who signed in earlier in the day: the scenario measures the
    steady state, not N password hashes at once (sign-in is timed on its own, see time_sign_in)."""
    import secrets
    import string
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    csrf = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    return {settings.SESSION_COOKIE_NAME: session.session_key, settings.CSRF_COOKIE_NAME: csrf}


def time_sign_in(base: str, user: dict, times: int = 5) -> list[float]:
    """Seconds per sign-in (GET /api/auth/me/ for the CSRF cookie, then POST /api/auth/login/), one at a
    time: the password hash is deliberately slow, so it is reported apart from the steady state."""
    import requests

    host = base.split("://", 1)[1]
    out = []
    for _ in range(times):
        s = requests.Session()
        headers = {"X-Forwarded-Proto": "https", "Referer": f"https://{host}/"}
        me = s.get(f"{base}/api/auth/me/", headers=headers)
        csrf = me.cookies.get("csrftoken", "")
        start = time.perf_counter()
        r = s.post(f"{base}/api/auth/login/", json={"username": user["username"], "password": user["password"]},
                   headers={**headers, "X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}"})
        out.append(time.perf_counter() - start)
        if r.status_code >= 300:
            raise SystemExit(f"bench_load: sign-in failed: HTTP {r.status_code} {r.text[:200]}")
    return out


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # the server answers (a 4xx is an answer)
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"bench_load: the server did not answer {url} within {timeout:.0f} s")


def report(csv_prefix: Path) -> int:
    rows = list(csv.DictReader(open(f"{csv_prefix}_stats.csv")))
    print(f"\n{'endpoint':<48} {'requests':>8} {'errors':>6} {'p50':>7} {'p95':>7} {'p99':>7}  goal")
    misses = errors = 0
    for row in rows:
        if row["Name"] == "Aggregated":
            continue
        p50, p95, p99 = (float(row[k] or 0) for k in ("50%", "95%", "99%"))
        ok = p99 < GOAL_P99_MS
        misses += not ok
        errors += int(row["Failure Count"])
        print(f"{row['Type'] + ' ' + row['Name']:<48} {row['Request Count']:>8} {row['Failure Count']:>6} "
              f"{p50:>5.0f}ms {p95:>5.0f}ms {p99:>5.0f}ms  {'ok' if ok else 'MISSED'}")
    total = next(r for r in rows if r["Name"] == "Aggregated")
    print(f"{'all':<48} {total['Request Count']:>8} {total['Failure Count']:>6} {float(total['50%']):>5.0f}ms "
          f"{float(total['95%']):>5.0f}ms {float(total['99%']):>5.0f}ms  ({float(total['Requests/s']):.1f} req/s)")
    failures = Path(f"{csv_prefix}_failures.csv")
    if errors and failures.exists():
        print("\nfailures:\n" + failures.read_text()[:2000])
    print(f"\nendpoints over p99 {GOAL_P99_MS:.0f} ms: {misses}; errors: {errors}")
    return 1 if misses or errors else 0


def main() -> int:
    args = parse_args()
    base_db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    dsn = admin_dsn(base_db)
    db_name = f"load_{os.getpid()}"
    u = urlparse(base_db)
    db_url = u._replace(path=f"/{db_name}").geturl()
    broker = urlparse(os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))._replace(path="/14").geturl()
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    env = {**os.environ, "DATABASE_URL": db_url, "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker,
           "ANNOTATION_VAR_DIR": str(work / "var"), "MEDIA_ROOT": str(work / "media"), "DEBUG": "0",
           "SECRET_KEY": "load-test-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1,localhost",
           "SECURE_SSL_REDIRECT": "0", "DJANGO_SETTINGS_MODULE": "annotation_app.settings",
           "PYTHONPATH": str(REPO)}
    os.environ.update(env)
    run_sql(dsn, f'CREATE DATABASE "{db_name}"')
    server = None
    try:
        print(f"seeding {args.users} annotators, a {args.slices}x512x512 CT ...", flush=True)
        fixture = seed(args.users, args.slices)
        fixture_path = work / "fixture.json"
        fixture_path.write_text(json.dumps(fixture))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "annotation_app.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(args.workers), "--timeout", "120", "--log-level", "warning"],
            cwd=REPO, env=env, start_new_session=True,
        )
        wait_http(f"http://127.0.0.1:{port}/api/auth/me/", 60)
        print(f"gunicorn ({args.workers} workers) on :{port}; {args.users} users for {args.seconds} s", flush=True)
        # every gunicorn worker builds Django's URL resolver and DRF's machinery on its first requests:
        # warm them all before measuring a working day's steady state
        user = fixture["users"][0]
        warm = {"Cookie": "; ".join(f"{k}={v}" for k, v in user["cookies"].items()), "X-Forwarded-Proto": "https"}
        paths = ("/api/auth/me/", f"/api/targets/{user['target']}/", "/api/cases/", "/api/targets/")
        for path in paths * (4 * args.workers):
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=warm), timeout=30)
        logins = time_sign_in(f"http://127.0.0.1:{port}", fixture["users"][0])
        print(f"sign-in, one at a time: median {sorted(logins)[len(logins) // 2] * 1000:.0f} ms "
              f"(max {max(logins) * 1000:.0f} ms) - the password hash's deliberate cost", flush=True)
        prefix = work / "locust"
        subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(REPO / "benchmarks/load/locustfile.py"), "--headless",
             "-u", str(args.users), "-r", str(max(1, args.users // 4)), "-t", f"{args.seconds}s",
             "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
             "--stop-timeout", "10"],
            cwd=REPO, env={**env, "LOAD_FIXTURE": str(fixture_path)}, check=False, timeout=args.seconds + 120,
        )
        return report(prefix)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        run_sql(dsn, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        import redis

        redis.Redis.from_url(broker).flushdb()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
