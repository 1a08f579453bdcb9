"""Importing from the server-side folder IMPORT_DIR (large studies copied onto the server's disk).

Each top-level entry of the folder (a file, or a folder = one upload, e.g. a DICOM series) is imported
at most once per project: cases remember it in image_meta["import_path"]. Names come from clients, so
only exact names of existing, non-hidden, non-symlink top-level entries are accepted.
"""

from pathlib import Path

from annotation_app.imaging.ingest import stage_upload
from annotation_app.imaging.io.errors import IngestError
from annotation_app.imaging.limits import import_dir
from annotation_app.imaging.models import Case


def files_of(path: Path) -> list[tuple[str, Path]]:
    """The upload a path stands for: the file itself, or every regular file below a folder."""
    if path.is_file():
        return [(path.name, path)]
    # Symbolic links (to files or folders) are left out wherever they lead: an entry holds only its own files.
    root = path.resolve()
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and not p.is_symlink() and root in p.resolve().parents
    )
    return [(p.relative_to(path).as_posix(), p) for p in files]


def import_key(path: Path) -> str:
    return str(path.resolve())


def already_imported(project, path: Path) -> bool:
    return Case.objects.filter(project=project, image_meta__import_path=import_key(path)).exists()


def folder() -> Path:
    root = import_dir()
    if root is None:
        raise IngestError(
            "no server import folder is configured (setting IMPORT_DIR)", status=404, code="no_import_dir"
        )
    if not root.is_dir():
        raise IngestError(
            "the server import folder (setting IMPORT_DIR) does not exist", status=404, code="no_import_dir"
        )
    return root


def list_entries(project) -> list[dict]:
    root = folder()
    out = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.is_symlink():
            continue
        size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for _, p in files_of(path))
        out.append(
            {
                "name": path.name,
                "kind": "file" if path.is_file() else "folder",
                "size": size,
                "imported": already_imported(project, path),
            }
        )
    return out


def resolve_entry(name: str) -> Path:
    root = folder()
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise IngestError(f"{name!r} is not an entry of the import folder", code="invalid_entry")
    path = root / name
    if (
        name.startswith(".")
        or path.is_symlink()
        or not path.exists()
        or path.resolve().parent != root.resolve()
    ):
        raise IngestError(f"{name!r} is not an entry of the import folder", code="invalid_entry")
    return path


def import_entries(
    project, names: list[str], *, run: str = "queue", modality: str | None = None, assignee=None
) -> tuple[list[Case], dict[str, str]]:
    """Import each named entry; returns (new cases, {name: reason} for entries refused or skipped)."""
    cases: list[Case] = []
    problems: dict[str, str] = {}
    for name in names:
        try:
            path = resolve_entry(name)
            if already_imported(project, path):
                problems[name] = "already imported"
                continue
            cases += stage_upload(
                project,
                files_of(path),
                modality=modality,
                assignee=assignee,
                run=run,
                extra_meta={"import_path": import_key(path)},
            )
        except IngestError as exc:
            problems[name] = exc.message
    return cases, problems
