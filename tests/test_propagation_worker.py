"""Propagation jobs run by REAL Celery worker processes on Redis against the test Postgres database."""
import os


def test_a_worker_fixture_runs_the_health_task_and_kill9_ends_it(celery_worker):
    from annotation_app.celery import app

    result = app.send_task("inference_worker.tasks.health.ping", args=["hello"], queue="default")
    reply = result.get(timeout=30)
    assert reply["echo"] == "hello"
    assert reply["pid"] != os.getpid()
    celery_worker.kill9()
    assert not celery_worker.is_alive()
