#!/usr/bin/env bash
# Creates .venv and installs the project (pinned) once per change of pyproject.toml.
# torch is pinned to 2.13.0; this project never asks for a newer torch (no multi-GB CUDA builds).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "setup: Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1))" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages (first run takes a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[dev,worker]"
    # The reference SAM2 (test-only, for the parity test): a source distribution whose CUDA
    # extension and torchvision dependency we do not want; its video path needs only hydra/omegaconf/iopath.
    SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install -q --no-deps --no-build-isolation "sam2==1.1.0"
    rm -f .venv/.installed-*
    touch "$stamp"
fi

if [ -f frontend/package.json ]; then
    if ! command -v npm >/dev/null; then
        echo "setup: Node.js 20 and npm are needed for the browser app" >&2
        exit 2
    fi
    lockstamp="frontend/node_modules/.installed-$(sha256sum frontend/package-lock.json 2>/dev/null | cut -c1-16)"
    if [ ! -f "$lockstamp" ]; then
        echo "setup: installing frontend packages"
        (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
        touch "$lockstamp"
    fi
    echo "setup: building the browser app"
    (cd frontend && npm run --silent build >/dev/null)
fi
