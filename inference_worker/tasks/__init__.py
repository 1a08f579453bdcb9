"""Task modules; each is imported here so `autodiscover_tasks` registers them by name."""
from inference_worker import recovery  # noqa: F401  (worker signals: own gpu queue, presence, recovery)
from inference_worker.tasks import export, health, ingest, pacs, propagation, training  # noqa: F401
