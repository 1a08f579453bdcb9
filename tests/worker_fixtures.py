"""Fixtures that run a real Celery worker process (owned by the propagation-jobs work; see there)."""
