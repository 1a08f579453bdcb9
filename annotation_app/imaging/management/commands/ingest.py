"""manage.py ingest PROJECT_ID PATH... | --folder [DIR]: import images from the server's disk.

Each PATH (a file, or a folder whose files form one upload, e.g. a DICOM series) goes through the same
validation and conversion as an API upload. --folder DIR (default: the IMPORT_DIR setting) imports
every top-level entry of DIR, skipping entries already imported into the project. Conversion runs in
this process unless --queue hands it to the workers.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation_app.imaging.folder_import import already_imported, files_of, import_key
from annotation_app.imaging.ingest import stage_upload
from annotation_app.imaging.io.errors import IngestError
from annotation_app.imaging.limits import import_dir
from annotation_app.projects.models import Project


class Command(BaseCommand):
    help = (
        "Import image files or folders into a project (DICOM, NIfTI, NRRD, MHA/MHD, video, PNG/JPEG frames)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("paths", nargs="*", type=Path)
        parser.add_argument(
            "--folder",
            nargs="?",
            const="",
            default=None,
            help="import every entry of this folder (default: IMPORT_DIR)",
        )
        parser.add_argument("--name", default=None, help="case name (single path only)")
        parser.add_argument("--modality", default=None, help="CT, MR, PT, US or ES (DICOM headers win)")
        parser.add_argument("--queue", action="store_true", help="convert on the workers instead of here")

    def handle(self, *args, **options):
        project = Project.objects.filter(pk=options["project_id"]).first()
        if project is None:
            raise CommandError(f"no project with id {options['project_id']}")
        paths: list[Path] = list(options["paths"])
        skip_done = False
        if options["folder"] is not None:
            folder = Path(options["folder"]) if options["folder"] else import_dir()
            if folder is None:
                raise CommandError("--folder needs a DIR or the IMPORT_DIR setting")
            if not folder.is_dir():
                raise CommandError(f"{folder} is not a folder")
            paths += sorted(p for p in folder.iterdir() if not p.name.startswith("."))
            skip_done = True
        if not paths:
            raise CommandError("nothing to import: give PATHs or --folder")
        if options["name"] and len(paths) > 1:
            raise CommandError("--name applies to a single PATH")
        failures = 0
        for path in paths:
            if not path.exists():
                raise CommandError(f"{path} does not exist")
            key = import_key(path)
            if skip_done and already_imported(project, path):
                self.stdout.write(f"skip {path}: already imported")
                continue
            try:
                cases = stage_upload(
                    project,
                    files_of(path),
                    name=options["name"],
                    modality=options["modality"],
                    run="queue" if options["queue"] else "sync",
                    extra_meta={"import_path": key},
                )
            except IngestError as exc:
                failures += 1
                self.stderr.write(f"{path}: {exc.message}")
                continue
            for case in cases:
                shape = "x".join(str(s) for s in case.shape)
                self.stdout.write(
                    f"case {case.pk} {case.name!r}: {case.status} {shape} {case.error}".rstrip()
                )
                failures += case.status == "failed"
        if failures:
            raise CommandError(f"{failures} path(s) could not be imported")
