"""The Django project of the annotation platform.

Importing the Celery app here makes `@shared_task` use it and lets `celery -A annotation_app` find it.
"""
from annotation_app.celery import app as celery_app

__all__ = ["celery_app"]
