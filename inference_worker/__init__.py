"""Celery task modules run by the workers. They use `medsam2` and the ORM, never the other way round."""
