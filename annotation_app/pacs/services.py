"""The PACS round trip's steps, called by the API (create_*), the worker tasks (run_*) and the
acceptance signal (send_on_acceptance).

Tasks are named in the task contract (annotation_app/lib/tasks.py: PACS_IMPORT, PACS_SEND) and sent
with its `send` after the row is committed, so a worker never looks for a row that does not exist yet;
a broker that cannot be reached fails the row with the reason instead of leaving it queued forever.

Import: the series' instances arrive over WADO-RS into a private folder and go through `stage_upload`
(the same validation as an upload: headers, sizes, geometry) and `run_ingest`, in this task; any PACS
or validation failure leaves no Case and no stored file behind.
"""

import logging
import shutil
import tempfile
from pathlib import Path

from django.db import IntegrityError, transaction

from annotation_app.annotations.models import Target, TargetStatus
from annotation_app.imaging.exports import ExportError
from annotation_app.imaging.ingest import run_ingest, stage_upload, staging_root
from annotation_app.imaging.io.errors import IngestError, too_large
from annotation_app.imaging.limits import Limits
from annotation_app.imaging.models import Case, CaseStatus
from annotation_app.lib import tasks as contract
from annotation_app.lib.errors import Conflict
from annotation_app.pacs import client
from annotation_app.pacs.models import DicomWebConnection, JobStatus, PacsImport, SegSend, SendStatus

log = logging.getLogger(__name__)

#: project setting: the id of the connection accepted targets are sent to automatically
AUTO_SEND_SETTING = "pacs_auto_send_connection"


# --- import
def create_import(
    project, connection: DicomWebConnection, study_uid: str, series_uid: str, user, description: str = ""
) -> PacsImport:
    """Queue the import of one series; Conflict (409) if the project already has it."""
    if not connection.usable_by(project.pk):
        raise Conflict("this PACS connection belongs to another project")
    existing = PacsImport.objects.filter(project=project, series_uid=series_uid).exclude(status=JobStatus.FAILED)
    earlier = existing.first()
    if earlier is not None:
        raise Conflict(
            f"series {series_uid} is already imported into this project (import {earlier.pk}, "
            f"{earlier.status}" + (f", case {earlier.case_id})" if earlier.case_id else ")")
        )
    case = Case.objects.filter(project=project, series_uid=series_uid).exclude(status=CaseStatus.FAILED).first()
    if case is not None:
        raise Conflict(f"series {series_uid} is already in this project as case {case.pk} ({case.name!r})")
    try:
        with transaction.atomic():
            job = PacsImport.objects.create(
                project=project,
                connection=connection,
                study_uid=study_uid,
                series_uid=series_uid,
                description=description[:255],
                requested_by=user if getattr(user, "is_authenticated", False) else None,
            )
            contract.send(contract.PACS_IMPORT, job.pk, on_error=job.fail)
    except IntegrityError:  # a racing request for the same series won
        raise Conflict(f"series {series_uid} is already being imported into this project") from None
    return job


class SeriesImport:
    """The steps of one import, in order: claim, fetch, stage, convert."""

    def __init__(self, job: PacsImport):
        self.job = job
        self.limits = Limits.current()

    def run(self) -> str:
        if not self.job.claim():
            return "skipped"
        folder = Path(tempfile.mkdtemp(prefix=f"pacs-{self.job.pk}-", dir=staging_root()))
        try:
            if self.job.case is not None:  # an abandoned run had staged the series: convert it only
                return self.convert([self.job.case])
            files = self.fetch(folder)
            cases = self.stage(files)
            return self.convert(cases)
        except (client.PacsError, IngestError) as exc:
            self.job.fail(exc.message)
            return "failed"
        except Exception as exc:
            log.exception("PACS import %s failed", self.job.pk)
            self.job.fail(f"internal error while importing: {type(exc).__name__}")
            return "failed"
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def fetch(self, folder: Path) -> list[tuple[str, Path]]:
        """WADO-RS the series into `folder`; progress 0..0.5 by instance."""
        job, connection = self.job, self.job.connection
        total = client.count_instances(connection, job.study_uid, job.series_uid)
        if total == 0:
            raise client.PacsError(f"the PACS has no instances of series {job.series_uid}")
        if total > self.limits.max_files:
            raise too_large(f"the series has {total} instances; at most {self.limits.max_files} are accepted")
        job.set_progress(0.0, n_instances=total)
        files, size = [], 0
        for i, dataset in enumerate(client.iter_instances(connection, job.study_uid, job.series_uid)):
            if str(dataset.get("SeriesInstanceUID", "")) != job.series_uid:
                raise client.PacsError("the PACS sent an instance of another series; nothing was imported")
            path = folder / f"instance_{i:05d}.dcm"
            dataset.save_as(path, enforce_file_format=True)
            size += path.stat().st_size
            if size > self.limits.max_upload_bytes:
                raise too_large(f"the series is larger than {self.limits.max_upload_bytes} bytes")
            files.append((path.name, path))
            job.set_progress(0.5 * (i + 1) / max(total, i + 1))
        if not files:
            raise client.PacsError(f"the PACS returned no instances of series {job.series_uid}")
        return files

    def stage(self, files: list[tuple[str, Path]]) -> list[Case]:
        """The upload path's validation and storage; cases are made but not yet converted."""
        job = self.job
        meta = {"pacs": {"connection": job.connection_id, "import": job.pk, "study_uid": job.study_uid}}
        cases = stage_upload(job.project, files, run="none", extra_meta=meta, name=job.description or None)
        if len(cases) != 1:
            raise IngestError(f"the series turned into {len(cases)} images; expected one")
        job.set_progress(0.5, case=cases[0])
        return cases

    def convert(self, cases: list[Case]) -> str:
        case = cases[0]
        run_ingest(case.pk)
        case.refresh_from_db()
        if case.status != CaseStatus.READY:
            self.job.fail(f"the series could not be converted: {case.error}")
            return "failed"
        self.job.finish(case)
        return "succeeded"


def run_import(import_id: int) -> str:
    job = PacsImport.objects.select_related("connection", "project").filter(pk=import_id).first()
    if job is None:
        return "skipped"
    return SeriesImport(job).run()


# --- send
def create_send(target: Target, connection: DicomWebConnection, user=None, automatic: bool = False) -> SegSend:
    """Queue the target's accepted mask for STOW-RS; a failed send of the same revision is retried."""
    case = target.case
    if target.status != TargetStatus.ACCEPTED:
        raise Conflict(f"target is {target.status}; only accepted targets are sent to the PACS")
    if case.kind != "volume":
        raise Conflict("only volumes can be sent as DICOM SEG")
    if not connection.usable_by(case.project_id):
        raise Conflict("this PACS connection belongs to another project")
    if not connection.stow_url:
        raise Conflict(f"PACS connection {connection.name!r} has no STOW-RS URL")
    revision = target.current_revision
    if revision is None or revision.voxel_count == 0:
        raise Conflict("the accepted target has an empty mask; there is nothing to send")
    from pydicom.uid import generate_uid

    with transaction.atomic():
        Target.objects.select_for_update().filter(pk=target.pk).first()
        send = SegSend.objects.filter(revision=revision, connection=connection).first()
        if send is not None:
            if send.status == SendStatus.SENT:
                raise Conflict(f"revision {revision.number} is already in the PACS (SEG {send.sop_instance_uid})")
            if send.status != SendStatus.FAILED:
                raise Conflict(f"revision {revision.number} is already {send.status}")
            send.requeue()
        else:
            send = SegSend.objects.create(
                target=target,
                revision=revision,
                connection=connection,
                sop_instance_uid=generate_uid(),
                series_instance_uid=generate_uid(),
                automatic=automatic,
                requested_by=user if getattr(user, "is_authenticated", False) else None,
            )
        contract.send(contract.PACS_SEND, send.pk, on_error=send.mark_failed)
    return send


def retry_send(send: SegSend) -> SegSend:
    if send.status != SendStatus.FAILED:
        raise Conflict(f"send {send.pk} is {send.status}; only a failed send is retried")
    return create_send(send.target, send.connection, automatic=send.automatic)


def run_send(send_id: int) -> str:
    from annotation_app.pacs.seg import build_seg

    send = SegSend.objects.select_related("target__case", "revision", "connection").filter(pk=send_id).first()
    if send is None or not send.claim():
        return "skipped"
    try:
        dataset = build_seg(send.target, send.revision, send.series_instance_uid, send.sop_instance_uid)
        SegSend.objects.filter(pk=send.pk).update(study_instance_uid=str(dataset.StudyInstanceUID))
        client.store(send.connection, dataset)
    except client.PacsError as exc:
        send.mark_failed(exc.message)
        return "failed"
    except ExportError as exc:
        send.mark_failed(str(exc))
        return "failed"
    except Exception as exc:
        log.exception("SEG send %s failed", send.pk)
        send.mark_failed(f"internal error while building or sending the SEG: {type(exc).__name__}")
        return "failed"
    send.mark_sent()
    return "sent"


def send_on_acceptance(sender, target: Target, reviewer=None, **kwargs) -> None:
    """`target_accepted` receiver: send to the project's auto-send connection, if it names one."""
    connection_id = (target.case.project.settings or {}).get(AUTO_SEND_SETTING)
    if not connection_id:
        return
    connection = DicomWebConnection.objects.filter(pk=connection_id).first()
    if connection is None or not connection.usable_by(target.case.project_id):
        log.warning(
            "project %s auto-sends to connection %s, which it cannot use",
            target.case.project_id,
            connection_id,
        )
        return
    try:
        create_send(target, connection, user=reviewer, automatic=True)
    except Conflict as exc:
        log.warning("auto-send of target %s skipped: %s", target.pk, exc.detail)
