"""The Celery app: three queues, routed by task name.

- `default`: CPU work (ingest, export, health).
- `gpu`: propagation; one task at a time per worker process (prefetch 1, acks late).
- `training`: fine-tuning; long, one at a time.
Tasks are JSON only; a killed worker's task is redelivered (acks_late + reject_on_worker_lost).
"""
import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")

app = Celery("annotation_app")
app.config_from_object("django.conf:settings", namespace="CELERY")

TASK_ROUTES = {
    "inference_worker.tasks.propagation.*": {"queue": "gpu"},
    "inference_worker.tasks.training.*": {"queue": "training"},
    "inference_worker.tasks.*": {"queue": "default"},
}

app.conf.update(
    task_queues=(Queue("default"), Queue("gpu"), Queue("training")),
    task_default_queue="default",
    task_routes=TASK_ROUTES,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_track_started=True,
    broker_connection_retry_on_startup=True,
    result_expires=24 * 3600,
)
app.autodiscover_tasks(["inference_worker"], related_name="tasks")
