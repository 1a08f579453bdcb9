#!/usr/bin/env bash
# The project's test command (the README's and CI's): lint, type check, Python tests against Postgres
# and Redis (real Celery workers, the reference-SAM2 parity test, the learning test), frontend unit
# tests, and the end-to-end browser tests in Chromium. Every stage runs; the exit code is non-zero if
# any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}"

scripts/setup.sh || exit 2
# shellcheck disable=SC1091
source .venv/bin/activate

failed=()
stage() {
    local name="$1"
    shift
    echo "== $name"
    if ! "$@"; then
        failed+=("$name")
    fi
}

stage ruff ruff check .
stage mypy mypy medsam2
stage pytest pytest -q -p no:cacheprovider "$@"
if [ -f frontend/package.json ]; then
    stage "frontend unit tests" bash -c "cd frontend && npm test --silent"
    stage "end-to-end browser tests" scripts/e2e.sh
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED stages: ${failed[*]}"
    exit 1
fi
echo "All stages passed."
