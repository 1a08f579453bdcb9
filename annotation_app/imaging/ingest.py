"""Turning uploads into cases: validation and staging in the request, conversion in the worker.

`stage_upload` (request / management command): copies the upload to a private staging folder in chunks,
checks it (archive safety, file types, headers, sizes; see io/discover.py), stores the original once
under `uploads/<project>/<uuid>/` and creates one Case per series/file in status "ingesting", then
queues the ingest task (lib/tasks.py: INGEST) per case after the transaction commits. If any
check fails it raises IngestError and leaves nothing behind: no Case row, no stored file.

`run_ingest` (worker): re-reads the original, converts the case's source to the canonical array
(io/model.py), stores it and flips the case to "ready" with its geometry, or to "failed" with a reason.
"""

import functools
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from annotation_app.imaging import ingest_recovery
from annotation_app.imaging.io import dicom_io, nibabel_io, sitk_io, video_io, volume_headers
from annotation_app.imaging.io.archive import extract_zip, is_zip, pack_files
from annotation_app.imaging.io.discover import discover
from annotation_app.imaging.io.errors import IngestError, too_large
from annotation_app.imaging.io.model import LoadedImage, Source
from annotation_app.imaging.limits import Limits
from annotation_app.imaging.models import Case, CaseKind, CaseStatus
from annotation_app.imaging.storage import save_case_array
from annotation_app.lib import tasks
from annotation_app.lib.storage_full import INGEST_REASON, is_storage_full
from annotation_app.projects.models import Modality

log = logging.getLogger(__name__)
_CHUNK = 1024 * 1024


def staging_root() -> Path:
    root = Path(settings.VAR_DIR) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _safe_filename(name: str, taken: set[str]) -> str:
    base = Path(str(name).replace("\\", "/")).name.strip() or "upload"
    base = "".join(ch if ch.isalnum() or ch in "._-+ ()" else "_" for ch in base).lstrip(".") or "upload"
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        stem, dot, ext = base.partition(".")
        candidate = f"{stem}-{n}{dot}{ext}"
    taken.add(candidate.lower())
    return candidate


def _copy_in(uploads: Iterable[tuple[str, object]], folder: Path, limits: Limits) -> list[tuple[str, Path]]:
    """Write each upload (a Django UploadedFile, file object or Path) to `folder` in chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    written, total = [], 0
    for name, data in uploads:
        target = folder / _safe_filename(name, taken)
        with open(target, "wb") as out:
            if isinstance(data, Path):
                chunks: Iterable[bytes] = _file_chunks(data)
            elif hasattr(data, "chunks"):
                chunks = data.chunks(_CHUNK)
            else:
                chunks = iter(functools.partial(data.read, _CHUNK), b"")  # type: ignore[attr-defined]
            for chunk in chunks:
                total += len(chunk)
                if total > limits.max_upload_bytes:
                    raise too_large(f"the upload is larger than {limits.max_upload_bytes} bytes")
                out.write(chunk)
        written.append((target.name, target))
    if not written:
        raise IngestError("no file was uploaded", code="empty")
    if total == 0:
        raise IngestError("the upload is empty (0 bytes)", code="empty")
    return written


def _file_chunks(path: Path):
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _resolve_modality(source: Source, requested: str | None, project) -> str:
    value = source.modality or requested or project.modality
    if value not in Modality.values:
        raise IngestError(
            f"unknown modality {value!r}; expected one of {', '.join(Modality.values)}",
            code="invalid_modality",
        )
    return value


def stage_upload(
    project,
    uploads,
    *,
    name: str | None = None,
    modality: str | None = None,
    assignee=None,
    run: str = "queue",
    extra_meta: dict | None = None,
) -> list[Case]:
    """Validate `uploads` [(file name, file)] and create its cases; run="queue" | "sync" | "none"."""
    if modality and modality not in Modality.values:
        raise IngestError(
            f"unknown modality {modality!r}; expected one of {', '.join(Modality.values)}",
            code="invalid_modality",
        )
    limits = Limits.current()
    staging = Path(tempfile.mkdtemp(prefix="upload-", dir=staging_root()))
    stored_key = None
    planned_key = None  # known before the write: a write that fails halfway (disk full) leaves a part
    try:
        files = _copy_in(uploads, staging / "files", limits)
        if len(files) == 1 and is_zip(files[0][1]):
            original_name, original = files[0]
            root = staging / "extracted"
            extract_zip(original, root, limits)
        elif len(files) == 1:
            original_name, original = files[0]
            root = staging / "files"
        else:
            original_name = "upload.zip"
            original = pack_files([(n, p) for n, p in files], staging / original_name)
            root = staging / "files"
        sources, ignored = discover(root, limits)
        modalities = [_resolve_modality(s, modality, project) for s in sources]
        with transaction.atomic():
            planned_key = f"uploads/{project.pk}/{uuid.uuid4().hex}/{original_name}"
            with open(original, "rb") as handle:
                stored_key = default_storage.save(planned_key, File(handle, name=original_name))
            cases = []
            for i, (source, mod) in enumerate(zip(sources, modalities, strict=True)):
                if name:
                    case_name = name if len(sources) == 1 else f"{name} ({i + 1}: {source.name})"
                else:
                    case_name = source.name or Path(original_name).stem
                cases.append(
                    Case.objects.create(
                        project=project,
                        name=case_name[:255],
                        kind=source.kind,
                        modality=mod,
                        status=CaseStatus.INGESTING,
                        original_key=stored_key,
                        assignee=assignee,
                        image_meta={
                            "source": source.describe(),
                            "original_name": original_name,
                            "ignored_files": ignored[:50],
                            **(extra_meta or {}),
                        },
                    )
                )
            if run == "queue":
                for case in cases:
                    transaction.on_commit(lambda pk=case.pk: enqueue_ingest(pk))
        if run == "sync":
            for case in cases:
                run_ingest(case.pk)
                case.refresh_from_db()
        return cases
    except BaseException:
        for key in {stored_key, planned_key} - {None}:
            default_storage.delete(key)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def enqueue_ingest(case_id: int) -> None:
    """Queue the conversion on the `default` queue (sync when IMAGING_INGEST_EAGER is set, for tests)."""
    if getattr(settings, "IMAGING_INGEST_EAGER", False):
        run_ingest(case_id)
        return

    def fail(message: str) -> None:  # the broker is down: say so on the case instead of a silent stall
        case = Case.objects.filter(pk=case_id).first()
        if case is not None:
            case.mark_failed(f"could not queue the ingest task: {message}")

    tasks.send(tasks.INGEST, case_id, on_error=fail)


def _progress_writer(case_id: int) -> Callable[[float], None]:
    last = [-1.0]

    def report(fraction: float) -> None:
        if fraction - last[0] >= 0.05 or fraction >= 1.0:
            last[0] = fraction
            Case.objects.filter(pk=case_id).update(progress=round(float(fraction), 3))

    return report


def load_source(
    root: Path, source: Source, modality: str | None, limits: Limits, progress=None
) -> LoadedImage:
    if source.format == "dicom":
        return dicom_io.load(root, source, progress)
    if volume_headers.kind_of(source.files[0]):
        # Again in the worker, before the reader: the header's data file must still lie in this upload.
        volume_headers.check(root, source.files[0], limits)
    if source.format == "sitk":
        return sitk_io.load(root, source, modality, progress)
    if source.format == "nibabel":
        return nibabel_io.load(root, source, modality, progress)
    if source.format == "video":
        return video_io.load_video(root, source, modality, limits, progress)
    if source.format == "frames":
        return video_io.load_frames(root, source, modality, progress)
    raise IngestError(f"unknown source format {source.format!r}")


def run_ingest(case_id: int) -> str:
    """Convert one case (idempotent: a case that is no longer ingesting is left alone)."""
    case = Case.objects.filter(pk=case_id).first()
    if case is None or case.status != CaseStatus.INGESTING:
        return "skipped"
    worker = ingest_recovery.worker_identity()
    if not ingest_recovery.claim(case, worker):  # another worker holds it, or it was given up
        return "skipped"
    ingest_recovery.remove_leftover_work(staging_root(), case.pk)  # of a run that was lost
    with ingest_recovery.heartbeat(case.pk, worker):
        return _convert(case)


def _convert(case: Case) -> str:
    case_id = case.pk
    limits = Limits.current()
    progress = _progress_writer(case_id)
    work = Path(tempfile.mkdtemp(prefix=f"ingest-{case_id}-", dir=staging_root()))
    key = None
    try:
        source = Source.from_description(case.image_meta["source"])
        original = _original_file(case.original_key, work)
        if is_zip(original):
            root = work / "extracted"
            extract_zip(original, root, limits, folders={str(Path(f).parent) for f in source.files})
        else:
            root = work
            (work / source.files[0]).symlink_to(original)
        progress(0.05)
        loaded = load_source(root, source, case.modality, limits, progress)
        _check_loaded(loaded, case)
        key = save_case_array(case, loaded.array)
        meta = {**case.image_meta, **loaded.meta}
        ready = case.mark_ready(
            image_key=key,
            shape=[int(s) for s in loaded.array.shape],
            spacing=loaded.spacing,
            origin=loaded.origin,
            direction=loaded.direction,
            frame_rate=loaded.frame_rate,
            study_uid=loaded.study_uid[:64],
            series_uid=loaded.series_uid[:64],
            image_meta=meta,
            progress=1.0,
        )
        if not ready:
            _discard(key)
            return "skipped"
        return "ready"
    except IngestError as exc:
        case.mark_failed(exc.message)
        return "failed"
    except Exception as exc:
        if is_storage_full(exc):  # lib/storage_full.py: say so, and keep nothing of this case
            log.error("ingest of case %s: storage full (%s)", case_id, exc)
            case.mark_failed(INGEST_REASON)
            ingest_recovery.discard_files(case)
            return "failed"
        log.exception("ingest of case %s failed", case_id)
        if key:
            _discard(key)
        case.mark_failed(f"internal error while converting the image: {type(exc).__name__}: {exc}")
        return "failed"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _discard(key: str) -> None:
    """Delete an array this run wrote, unless a case (e.g. a redelivered twin that won) refers to it."""
    if not Case.objects.filter(image_key=key).exists():
        default_storage.delete(key)


def _original_file(key: str, work: Path) -> Path:
    """A local path of the stored original: the file itself on local storage, else a private copy in
    this run's work folder (removed with it), so concurrent runs never share a half-written cache."""
    try:
        return Path(default_storage.path(key))
    except NotImplementedError:
        copy = work / "original"
        with default_storage.open(key, "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        return copy


def _check_loaded(loaded: LoadedImage, case: Case) -> None:
    expected_kind = CaseKind.VIDEO if loaded.kind == "video" else CaseKind.VOLUME
    if expected_kind != case.kind:
        raise IngestError(f"the image turned out to be a {loaded.kind}, not a {case.kind}")
    if loaded.array.size == 0:
        raise IngestError("the image is empty", code="empty")
