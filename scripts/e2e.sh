#!/usr/bin/env bash
# End-to-end browser test: builds the frontend, starts the real stack on free ports (Django
# runserver + one Celery worker on the default and gpu queues) against DATABASE_URL/CELERY_BROKER_URL
# (embedded SQLite + filesystem broker when unset), loads the small demo, runs
# `npm --prefix frontend run e2e` (Playwright driving /usr/bin/chromium), and tears everything down.
# With a Postgres DATABASE_URL a throwaway database <name>_e2e_<pid> is used and dropped afterwards;
# with Redis, database E2E_REDIS_DB (default 13) keeps the worker away from other queues.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

if [ -f .venv/bin/activate ]; then
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    echo "e2e: Chromium not found at $CHROMIUM (apt-get install -y chromium)" >&2
    exit 2
fi

WORK="$(mktemp -d /tmp/medsam2-e2e.XXXXXX)"
export ANNOTATION_VAR_DIR="$WORK/var"
export DEMO_PASSWORD="${DEMO_PASSWORD:-demo-pass-123}"
export DEBUG=1
mkdir -p "$ANNOTATION_VAR_DIR/celery-results"
PIDS=()
DROP_DB=""

cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$DROP_DB" ]; then
        python - "$DROP_DB" <<'PY' || true
import sys, psycopg2
from urllib.parse import urlparse
url, name = sys.argv[1].rsplit("|", 1)
u = urlparse(url)
conn = psycopg2.connect(host=u.hostname, port=u.port or 5432, user=u.username or "postgres", password=u.password, dbname="postgres")
conn.autocommit = True
conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
PY
    fi
    if [ "$rc" -ne 0 ]; then
        echo "e2e: failed (rc=$rc); server log tail:" >&2
        tail -n 40 "$WORK/web.log" >&2 2>/dev/null || true
        echo "e2e: worker log tail:" >&2
        tail -n 40 "$WORK/worker.log" >&2 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT INT TERM

# --- database: a fresh Postgres database when one is configured
if [[ "${DATABASE_URL:-}" == postgres* ]]; then
    BASE_URL_DB="${DATABASE_URL%/*}"
    DB_NAME="$(basename "${DATABASE_URL%%\?*}")_e2e_$$"
    python - "$BASE_URL_DB/postgres" "$DB_NAME" <<'PY'
import sys, psycopg2
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
conn = psycopg2.connect(host=u.hostname, port=u.port or 5432, user=u.username or "postgres", password=u.password, dbname="postgres")
conn.autocommit = True
conn.cursor().execute(f'CREATE DATABASE "{sys.argv[2]}"')
PY
    DROP_DB="$BASE_URL_DB/postgres|$DB_NAME"
    export DATABASE_URL="$BASE_URL_DB/$DB_NAME"
fi
if [[ "${CELERY_BROKER_URL:-}" == redis* ]]; then
    export CELERY_BROKER_URL="${CELERY_BROKER_URL%/*}/${E2E_REDIS_DB:-13}"
    export CELERY_RESULT_BACKEND="$CELERY_BROKER_URL"
fi

echo "== e2e: build frontend"
if [ ! -d frontend/node_modules ]; then
    npm --prefix frontend ci --no-audit --no-fund
fi
# rebuild only when the sources are newer than the build (scripts/setup.sh usually just built it)
if [ ! -f frontend/dist/index.html ] || [ -n "$(find frontend/src frontend/index.html frontend/package-lock.json frontend/vite.config.ts -newer frontend/dist/index.html 2>/dev/null | head -n 1)" ]; then
    npm --prefix frontend run build --silent
else
    echo "e2e: frontend/dist is up to date"
fi

echo "== e2e: migrate + demo data"
python manage.py migrate --noinput -v 0
python manage.py load_demo --small

# A demo lesion to box: its target, key slice and ground-truth box (x0, y0, x1, y1), plus 2 px margin.
E2E_LESION="$(python manage.py shell -v 0 -c '
import json, io
import numpy as np
from django.core.files.storage import default_storage
from annotation_app.annotations.models import Target
t = Target.objects.filter(case__modality="CT", case__kind="volume", key_frame__isnull=False).order_by("id").first()
gt = np.load(io.BytesIO(default_storage.open(t.case.image_meta["ground_truth_key"]).read()))
k = t.key_frame
labels = [int(v) for v in np.unique(gt[k]) if v]
label = max(labels, key=lambda v: int((gt[k] == v).sum()))
ys, xs = np.nonzero(gt[k] == label)
h, w = gt.shape[1:3]
box = [max(0, int(xs.min()) - 2), max(0, int(ys.min()) - 2), min(w, int(xs.max()) + 3), min(h, int(ys.max()) + 3)]
print(json.dumps({"case": t.case_id, "target": t.id, "frame": k, "box": box, "area": int((gt[k] == label).sum())}))
')"
export E2E_LESION
echo "e2e: lesion $E2E_LESION"

# A submitted demo target for the review test: the model's proposal (the ground truth of a lesion),
# then the annotator's edit of its key slice (rows removed, a patch added); the counts are the truth
# the reviewer's diff must show.
E2E_REVIEW="$(python manage.py shell -v 0 -c '
import io, json
import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from annotation_app.annotations.models import MaskRevision, Target
targets = list(Target.objects.filter(case__modality="CT", case__kind="volume", location__isnull=False).order_by("id"))
t = targets[1] if len(targets) > 1 else targets[0]
gt = np.load(io.BytesIO(default_storage.open(t.case.image_meta["ground_truth_key"]).read()))
k = t.key_frame
x, y = t.location["point"]
proposal = gt == gt[k, int(y), int(x)]
frames = [int(z) for z in np.nonzero(proposal.any(axis=(1, 2)))[0]]
scores = {str(z): {"object_score": 4.0, "iou": 0.92} for z in frames}
MaskRevision.append(t, proposal, "model", frame_scores=scores)
final = proposal.copy()
ys, xs = np.nonzero(proposal[k])
final[k, ys.min():ys.min() + 2, :] = False
final[k, 1:4, 1:4] = True
MaskRevision.append(t, final, "human", author=get_user_model().objects.get(username="demo-annotator"))
t.submit()
other = next(z for z in frames if z != k)
print(json.dumps({"case": t.case_id, "target": t.id, "frame": k, "model_frame": other, "proposal_frames": len(frames),
                  "added": int((final & ~proposal).sum()), "removed": int((proposal & ~final).sum())}))
')"
export E2E_REVIEW
echo "e2e: review target $E2E_REVIEW"

PORT="$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export BASE_URL="http://127.0.0.1:$PORT"

echo "== e2e: start web ($BASE_URL) and worker"
python manage.py runserver "127.0.0.1:$PORT" --noreload >"$WORK/web.log" 2>&1 &
PIDS+=($!)
celery -A annotation_app worker -Q default,gpu -c 1 --pool solo -n "e2e-$$@%h" --without-heartbeat --without-gossip --without-mingle >"$WORK/worker.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 1 120); do
    if [ "$(curl -s -o /dev/null -w "%{http_code}" "$BASE_URL/")" = "200" ]; then break; fi
    sleep 0.5
done
curl -fsS -o /dev/null "$BASE_URL/" || { echo "e2e: web server did not start" >&2; exit 1; }

echo "== e2e: browser tests"
export CHROMIUM E2E_ANNOTATOR="${E2E_ANNOTATOR:-demo-annotator}" E2E_REVIEWER="${E2E_REVIEWER:-demo-reviewer}" E2E_PASSWORD="$DEMO_PASSWORD"
export E2E_ARTIFACTS="${E2E_ARTIFACTS:-$ROOT/test-artifacts}"
if [ -n "${E2E_ONLY:-}" ]; then
    # some test files, in order, e.g. E2E_ONLY="annotate.test.mjs corrections.test.mjs"
    only=()
    for name in $E2E_ONLY; do only+=("e2e/$name"); done
    (cd frontend && node --test --test-concurrency=1 "${only[@]}")
else
    npm --prefix frontend run e2e
fi
