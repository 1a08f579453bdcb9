"""Task modules; each is imported here so `autodiscover_tasks` registers them by name."""
from inference_worker.tasks import health  # noqa: F401
