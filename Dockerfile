# Two images from one file (docker-compose.yml picks the target and the command):
#   web    (target "web"): gunicorn and migrations; the project without torch (pyproject's base deps).
#   worker (target "worker"): both Celery workers; the same tree plus the "worker" extra, torch pinned to
#          the version CI tests (2.13.0). The default PyPI wheel for linux/x86_64 bundles CUDA, so the
#          worker image runs the GPU worker on a host with the NVIDIA container toolkit.
# Stage 1 builds the browser app; "base" is the Python runtime, "worker" builds on "web".

FROM node:22-slim AS frontend
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ANNOTATION_VAR_DIR=/app/var \
    MEDIA_ROOT=/data/media \
    PYTHONPATH=/app
# libgomp: OpenMP for SimpleITK (and torch in the worker) on CPU; the rest is in manylinux wheels.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 annotate
WORKDIR /app

FROM base AS web
COPY pyproject.toml README.md ./
COPY annotation_app/ annotation_app/
COPY inference_worker/ inference_worker/
COPY medsam2/ medsam2/
RUN pip install .
# PYTHONPATH=/app makes every process import this tree (not the site-packages copy), so BASE_DIR
# points at /app where the built frontend lies.
COPY manage.py gunicorn.conf.py ./
COPY --from=frontend /frontend/dist frontend/dist

# Static files (the built frontend + admin + Swagger) are collected into the image at build time;
# whitenoise serves them. Settings need no secrets for this one step (DEBUG=1 only here).
RUN DEBUG=1 python manage.py collectstatic --noinput \
    && mkdir -p /data/media \
    && chown -R annotate:annotate /app/var /data

# The image is production: DEBUG off unless a run says otherwise, so a container started without
# settings refuses to start (no SECRET_KEY) instead of serving Django's debug page to the world.
ENV DEBUG=0
USER annotate
EXPOSE 8000
CMD ["gunicorn", "annotation_app.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]

# The worker: the web image plus the "worker" extra (torch==2.13.0, pinned in pyproject.toml). A code
# change rebuilds this layer too (the price of one tree for both images); the wheel is the same pin.
FROM web AS worker
USER root
RUN pip install torch==2.13.0 && pip install ".[worker]" \
    && python -c "import torch; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__"
USER annotate
CMD ["celery", "-A", "annotation_app", "worker", "-Q", "default", "--loglevel", "INFO"]
