"""Find and validate the cases inside an (extracted) upload: the cheap checks run in the request.

Each DICOM series (or multi-frame instance), each NIfTI/NRRD/MetaImage/MGH/MINC file, each video file
and each folder of PNG/JPEG frames becomes one `Source`. Documents (txt, json, pdf, ...) and OS clutter are
ignored; any other file must be DICOM, and one that is not is an error naming it.

NIfTI, NRRD and MetaImage headers are checked first, before any reader opens a file
(io/volume_headers.py): sizes against the limits, the voxel bytes present, and that a detached data
file (an .mhd's ElementDataFile, an .nhdr's data file) lies inside the upload; such a data file belongs
to its header and is never a source of its own.
"""

from collections import defaultdict
from pathlib import Path

from annotation_app.imaging.io import dicom_io, dicom_policy, nibabel_io, sitk_io, video_io, volume_headers
from annotation_app.imaging.io.errors import IngestError, unsupported
from annotation_app.imaging.io.model import Source
from annotation_app.imaging.limits import Limits

_IGNORED_SUFFIXES = {
    ".txt",
    ".json",
    ".xml",
    ".csv",
    ".md",
    ".pdf",
    ".html",
    ".htm",
    ".ini",
    ".log",
    ".raw",
    ".zraw",
    ".img",  # the voxels of a NIfTI .hdr/.img pair (read through its .hdr)
    ".db",
}
_IGNORED_NAMES = {"dicomdir", ".ds_store", "thumbs.db", "desktop.ini"}
#: compressed voxel data beside a header (detached NRRD), read through that header
_IGNORED_ENDINGS = (".raw.gz", ".img.gz")
_NOT_DICOM_SUFFIXES = {
    ".zip",
    ".gz",
    ".tar",
    ".tgz",
    ".7z",
    ".rar",
    ".bz2",
    ".xz",
    ".exe",
    ".doc",
    ".docx",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
}


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _ignored(rel: str) -> bool:
    parts = rel.split("/")
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return True
    name = parts[-1].lower()
    return name in _IGNORED_NAMES or Path(name).suffix in _IGNORED_SUFFIXES or name.endswith(_IGNORED_ENDINGS)


def discover(root: Path, limits: Limits) -> tuple[list[Source], list[str]]:
    """(sources, ignored file names) of everything under `root`; raises IngestError on bad content."""
    files = sorted((p for p in root.rglob("*") if p.is_file() and not p.is_symlink()), key=lambda p: str(p))
    if not files:
        raise IngestError("the upload contains no files", code="empty")
    sources: list[Source] = []
    ignored: list[str] = []
    frames_by_folder: dict[str, list[str]] = defaultdict(list)
    dicom_headers = []
    not_images: list[str] = []  # DICOM objects without pixels, by name and class
    volume_headers_by_name = _check_volume_headers(root, files, limits)
    data_files = {h.data_file for h in volume_headers_by_name.values() if h.data_file}
    for path in files:
        rel = _relative(root, path)
        lower = rel.lower()
        if rel in data_files:
            continue
        if _ignored(rel):
            ignored.append(rel)
        elif path.stat().st_size == 0:
            raise IngestError(f"{rel} is empty (0 bytes)", code="empty")
        elif nibabel_io.claims(path, lower):
            sources.append(_with_data_file(nibabel_io.probe(root, rel, limits), volume_headers_by_name.get(rel)))
        elif sitk_io.matches(lower):
            sources.append(_with_data_file(sitk_io.probe(root, rel, limits), volume_headers_by_name.get(rel)))
        elif lower.endswith(video_io.VIDEO_SUFFIXES):
            sources.append(video_io.probe_video(root, rel, limits))
        elif lower.endswith(video_io.FRAME_SUFFIXES):
            frames_by_folder[str(Path(rel).parent)].append(rel)
        elif Path(lower).suffix in _NOT_DICOM_SUFFIXES:
            raise unsupported(
                f"{rel}: unsupported file type (nested archives and this image type are not read)"
            )
        elif dicom_io.has_preamble(path) or Path(lower).suffix in dicom_io.DICOM_SUFFIXES:
            header = dicom_io.read_header(path, rel)
            if dicom_policy.is_supported_image(header, rel):  # raises for unsupported objects with pixels
                dicom_headers.append((rel, header))
            else:  # structured reports, presentation states, key objects: not images, not errors
                ignored.append(rel)
                not_images.append(f"{rel} ({dicom_policy.sop_class_name(header)})")
        else:
            raise unsupported(
                f"{rel}: unsupported file type; expected DICOM, NIfTI, NRRD, MHA/MHD, MGH/MGZ, MINC, "
                "a video or PNG/JPEG frames"
            )
    if dicom_headers:
        sources[:0] = dicom_io.probe(dicom_headers, limits)
    for folder in sorted(frames_by_folder):
        sources.append(video_io.probe_frames(root, frames_by_folder[folder], limits))
    if not sources:
        if not_images:
            raise unsupported(
                f"no images found in the upload: {', '.join(not_images[:5])} "
                f"{'is not an image' if len(not_images) == 1 else 'are not images'}; "
                f"supported DICOM objects are {dicom_policy.SUPPORTED_SUMMARY}"
            )
        raise unsupported(f"no images found in the upload (ignored: {', '.join(ignored[:5])})")
    return sources, ignored


def _check_volume_headers(root: Path, files: list[Path], limits: Limits) -> dict:
    """{name: VolumeHeader} of every NIfTI/NRRD/MetaImage/MINC file, checked before any reader opens one."""
    out = {}
    for path in files:
        rel = _relative(root, path)
        if not _ignored(rel) and volume_headers.kind_of(rel):
            if path.stat().st_size > 0:
                out[rel] = volume_headers.check(root, rel, limits)
    return out


def _with_data_file(source: Source, header) -> Source:
    """List a header's separate data file among the source's files, so the worker extracts its folder."""
    if header is not None and header.data_file and header.data_file not in source.files:
        source.files.append(header.data_file)
    return source
