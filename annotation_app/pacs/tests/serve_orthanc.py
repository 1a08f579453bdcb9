"""For the browser test (frontend/e2e/pacs.test.mjs): a real Orthanc holding one synthetic CT study and
a DICOMweb connection to it for one project, until stdin closes.

    python -m annotation_app.pacs.tests.serve_orthanc --project 3

prints one JSON line: {"connection", "dicomweb_url", "username", "password", "patient_id", "study_uid",
"series_uid"}, then waits; when its stdin closes (or on SIGTERM) it stops Orthanc, deletes the
connection and its scratch folder. Uses the database of DATABASE_URL, like the server under test.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=int, required=True)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
    import django

    django.setup()
    import pydicom

    from annotation_app.pacs.models import DicomWebConnection
    from annotation_app.pacs.tests.conftest import ct_volume, synthetic_study
    from annotation_app.pacs.tests.orthanc import start_orthanc

    folder = Path(tempfile.mkdtemp(prefix="e2e-orthanc-"))
    orthanc = start_orthanc(folder / "orthanc")
    connection = None
    try:
        paths = synthetic_study(
            folder / "ct", ct_volume(shape=(8, 64, 64)), patient_id="E2E-PACS-1", patient_name="Browser^Test",
            accession="E2EACC", study_description="E2E liver", series_description="e2e portal",
        )  # fmt: skip
        orthanc.store_files(paths)
        first = pydicom.dcmread(paths[0])
        connection = DicomWebConnection.objects.create(
            name="Orthanc (e2e)", project_id=options.project, qido_url=orthanc.dicomweb_url,
            wado_url=orthanc.dicomweb_url, stow_url=orthanc.dicomweb_url,
            username=orthanc.username, password=orthanc.password,
        )  # fmt: skip
        info = {
            "connection": connection.pk, "dicomweb_url": orthanc.dicomweb_url, "username": orthanc.username,
            "password": orthanc.password, "patient_id": "E2E-PACS-1",
            "study_uid": str(first.StudyInstanceUID), "series_uid": str(first.SeriesInstanceUID),
        }  # fmt: skip
        print(json.dumps(info), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            sys.stdin.read()
        except (ValueError, OSError):
            pass
    finally:
        orthanc.stop()
        if connection is not None:
            from annotation_app.pacs.models import PacsImport, SegSend

            SegSend.objects.filter(connection=connection).delete()
            PacsImport.objects.filter(connection=connection).delete()
            connection.delete()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
