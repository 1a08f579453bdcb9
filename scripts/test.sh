#!/usr/bin/env bash
# The project's test command (the README's and CI's): lint, Python tests against Postgres and Redis
# (real Celery workers, the reference-SAM2 parity test, the learning test), frontend unit tests,
# and the end-to-end browser tests in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}"

scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate

echo "== ruff"
ruff check .
echo "== mypy medsam2"
mypy medsam2
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
if [ -f frontend/package.json ]; then
    echo "== frontend unit tests"
    (cd frontend && npm test --silent)
    echo "== end-to-end browser tests"
    scripts/e2e.sh
fi
