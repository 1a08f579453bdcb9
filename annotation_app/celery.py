"""The Celery app: three queues, each task routed to its queue by the task contract (lib/tasks.py).

- `default`: CPU work (ingest, checkpoint checks, health).
- `gpu`: propagation; one task at a time per worker process (prefetch 1, acks late).
- `training`: fine-tuning; long, one at a time.
Tasks are JSON only; a killed worker's task is redelivered (acks_late + reject_on_worker_lost).
"""
import os

from celery import Celery
from kombu import Queue

from annotation_app.lib import tasks as contract

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")

app = Celery("annotation_app")
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.update(
    task_queues=tuple(Queue(name) for name in contract.QUEUES),
    task_default_queue=contract.DEFAULT_QUEUE,
    task_routes=contract.routes(),
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
