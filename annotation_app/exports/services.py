"""Run an export job (worker side) and queue one (web side).

`run_export(job_id)` re-reads the row, claims it, writes the file to storage under
`exports/<project>/<job>/<name>` and records progress on the row; it returns quietly when the job is
gone or already finished, so a redelivered task is harmless.
"""

import logging

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation_app.exports.models import PROJECT_FORMAT, ExportJob
from annotation_app.lib import tasks

log = logging.getLogger(__name__)


def enqueue_export(job: ExportJob) -> None:
    """Send the task (lib/tasks.py: EXPORT) once the job row is committed; a broker that cannot be reached
    fails the job."""
    tasks.send(tasks.EXPORT, job.pk, on_error=lambda message: job.fail(f"could not queue the export: {message}"))


def _store(job: ExportJob, name: str, content) -> str:
    key = f"exports/{job.project_id}/{job.pk}/{name}"
    if default_storage.exists(key):
        default_storage.delete(key)
    return default_storage.save(key, content)


def run_export(job_id: int) -> str:
    from annotation_app.imaging.exports import ExportError, export_case, project_zip

    job = ExportJob.objects.select_related("project", "case").filter(pk=job_id).first()
    if job is None or not job.claim():
        return "skipped"
    statuses = job.statuses or None
    try:
        if job.format == PROJECT_FORMAT:
            handle, size = project_zip(job.project, statuses, progress=lambda f: job.set_progress(0.95 * f))
            with handle:
                name = f"project_{job.project_id}_export.zip"
                key = _store(job, name, File(handle, name=name))
            job.succeed(key, name, "application/zip", size)
        else:
            job.set_progress(0.1)
            body, content_type, name, _ = export_case(job.case, job.format, statuses)
            job.set_progress(0.9)
            key = _store(job, name, ContentFile(body, name=name))
            job.succeed(key, name, content_type, len(body))
    except ExportError as exc:
        job.fail(str(exc))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - the reason goes on the row; the worker lives on
        log.exception("export job %s failed", job_id)
        job.fail(f"{type(exc).__name__}: {exc}")
        return "failed"
    return "succeeded"


def open_result(job: ExportJob):
    return default_storage.open(job.result_key, "rb")


