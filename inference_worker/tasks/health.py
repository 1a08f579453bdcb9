"""A health task: proves a worker is alive, which queue it serves and what device it would use."""
import os
import socket

from celery import shared_task


@shared_task(name="inference_worker.tasks.health.ping")
def ping(payload: str = "ping") -> dict:
    """Echo the payload with the worker's host and process id (JSON-serialisable)."""
    return {"echo": payload, "host": socket.gethostname(), "pid": os.getpid()}
