#!/usr/bin/env bash
# Runs the whole product on the embedded default (SQLite, Celery on the embedded filesystem broker,
# media in ./var): installs, migrates, creates a demo admin (password printed), loads the demo data,
# then runs the web server and one supervised Celery worker together until Ctrl+C. The supervisor
# (inference_worker/supervisor.py) restarts the worker whenever it dies and says so; the jobs it was
# running are queued again (README, "Embedded broker").
set -euo pipefail
cd "$(dirname "$0")/.."

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate

python manage.py migrate --noinput -v0
python manage.py create_demo_admin
if python manage.py help load_demo >/dev/null 2>&1; then
    python manage.py load_demo
fi

python -m inference_worker.supervisor --name "demo@%h" --queues default,gpu,training --loglevel WARNING &
WORKER_PID=$!
trap 'kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null' EXIT INT TERM

echo
echo "  MedSAM2 annotation platform: http://$HOST:$PORT/   (API: http://$HOST:$PORT/api/)"
echo
python manage.py runserver "$HOST:$PORT" --noreload
