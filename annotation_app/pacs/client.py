"""Talking to a PACS over DICOMweb through `dicomweb-client` (no hand-written DICOMweb requests).

Every call goes to the URLs of a stored `DicomWebConnection` only: QIDO-RS answers are read for their
attributes, never for the retrieve URLs they carry, so a PACS cannot redirect the server elsewhere.
Credentials travel as HTTP basic auth on the requests session; dicomweb-client logs URLs and request
headers, neither of which holds them (and connection URLs may not embed a user or password).

Failures become `PacsError` with a message a manager can act on ("connection refused", "the PACS
answered 500 ..."), never a stack trace and never the credentials.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pydicom
import requests
from dicomweb_client import DICOMwebClient

from annotation_app.pacs.models import DicomWebConnection

#: seconds: connect, read
TIMEOUT = (5, 60)
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
SEARCH_LIMIT = 100

#: the attributes the browser shows, keyword -> tag
STUDY_FIELDS = {
    "StudyInstanceUID": "0020000D",
    "PatientID": "00100020",
    "PatientName": "00100010",
    "StudyDate": "00080020",
    "AccessionNumber": "00080050",
    "StudyDescription": "00081030",
    "ModalitiesInStudy": "00080061",
    "NumberOfStudyRelatedSeries": "00201206",
}
SERIES_FIELDS = {
    "SeriesInstanceUID": "0020000E",
    "StudyInstanceUID": "0020000D",
    "Modality": "00080060",
    "SeriesNumber": "00200011",
    "SeriesDescription": "0008103E",
    "NumberOfSeriesRelatedInstances": "00201209",
}


class PacsError(Exception):
    """A PACS that cannot be reached or answers with an error; `message` is safe to show and store."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def is_uid(value: str) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and bool(UID.match(value))


class _Session(requests.Session):
    """dicomweb-client writes query values with `quote_plus`, so a wildcard `*` travels as `%2A`; Orthanc
    (1.10) then matches a literal star and a search for `Doe*` finds nothing. `*` needs no escaping in a
    query (RFC 3986 sub-delims), so it is sent as itself; UIDs and other values are unchanged."""

    def send(self, request, **kwargs):
        if request.url and "%2A" in request.url:
            request.url = request.url.replace("%2A", "*")
        return super().send(request, **kwargs)


def _session(connection: DicomWebConnection) -> requests.Session:
    session = _Session()
    if connection.username or connection.password:
        session.auth = (connection.username, connection.password)
    return session


def _client(connection: DicomWebConnection, url: str, retry: bool) -> DICOMwebClient:
    client = DICOMwebClient(url=url.rstrip("/"), session=_session(connection), timeout=TIMEOUT)
    if retry:
        client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=500)
    else:
        client.set_http_retry_params(retry=False)
    return client


def explain(exc: Exception, connection: DicomWebConnection, what: str) -> PacsError:
    """A readable reason for a failed DICOMweb call (no credentials: they are not in URLs or here)."""
    where = f"PACS connection {connection.name!r}"
    if isinstance(exc, PacsError):
        return exc
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return PacsError(f"{where} refused the credentials while {what} (HTTP {status})")
        body = (exc.response.text or "").strip().replace("\n", " ")[:200]
        return PacsError(f"{where} answered HTTP {status} while {what}" + (f": {body}" if body else ""))
    if isinstance(exc, requests.exceptions.ConnectionError):
        return PacsError(f"{where} could not be reached while {what} (connection refused or no route)")
    if isinstance(exc, requests.exceptions.Timeout):
        return PacsError(f"{where} did not answer in time while {what}")
    return PacsError(f"{where} failed while {what}: {type(exc).__name__}: {str(exc)[:200]}")


def _value(item: dict, tag: str):
    values = (item.get(tag) or {}).get("Value") or []
    if not values:
        return ""
    first = values[0]
    if isinstance(first, dict):  # person name
        return first.get("Alphabetic", "")
    if len(values) > 1:
        return [str(v) for v in values]
    return first


def _flatten(items: list[dict], fields: dict[str, str]) -> list[dict]:
    return [{name: _value(item, tag) for name, tag in fields.items()} for item in items]


@dataclass(frozen=True)
class StudyQuery:
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""  # YYYYMMDD or YYYYMMDD-YYYYMMDD
    modality: str = ""
    accession_number: str = ""
    description: str = ""

    def filters(self) -> dict[str, str]:
        wanted = {
            "PatientID": self.patient_id,
            "PatientName": self.patient_name,
            "StudyDate": self.study_date,
            "ModalitiesInStudy": self.modality,
            "AccessionNumber": self.accession_number,
            "StudyDescription": self.description,
        }
        return {key: value for key, value in wanted.items() if value}


def search_studies(connection: DicomWebConnection, query: StudyQuery) -> list[dict]:
    client = _client(connection, connection.qido_url, retry=False)
    try:
        found = client.search_for_studies(
            search_filters=query.filters(),
            fields=list(STUDY_FIELDS),
            limit=SEARCH_LIMIT,
            fuzzymatching=bool(query.patient_name or query.description) or None,
        )
    except Exception as exc:
        raise explain(exc, connection, "searching for studies") from None
    return _flatten(found, STUDY_FIELDS)


def search_series(connection: DicomWebConnection, study_uid: str) -> list[dict]:
    client = _client(connection, connection.qido_url, retry=False)
    try:
        found = client.search_for_series(study_instance_uid=study_uid, fields=list(SERIES_FIELDS))
    except Exception as exc:
        raise explain(exc, connection, "searching for series") from None
    return _flatten(found, SERIES_FIELDS)


def count_instances(connection: DicomWebConnection, study_uid: str, series_uid: str) -> int:
    client = _client(connection, connection.qido_url, retry=True)
    try:
        return len(client.search_for_instances(study_instance_uid=study_uid, series_instance_uid=series_uid))
    except Exception as exc:
        raise explain(exc, connection, "listing the series' instances") from None


def iter_instances(connection: DicomWebConnection, study_uid: str, series_uid: str) -> Iterator[pydicom.Dataset]:
    """The series' instances as they arrive over WADO-RS (one multipart stream)."""
    client = _client(connection, connection.wado_url, retry=True)
    try:
        yield from client.iter_series(study_uid, series_uid)
    except Exception as exc:
        raise explain(exc, connection, "retrieving the series") from None


def store(connection: DicomWebConnection, dataset: pydicom.Dataset) -> None:
    """STOW-RS one instance; a response that lists it as failed is an error too."""
    if not connection.stow_url:
        raise PacsError(f"PACS connection {connection.name!r} has no STOW-RS URL; it cannot receive masks")
    client = _client(connection, connection.stow_url, retry=True)
    try:
        response = client.store_instances([dataset], study_instance_uid=str(dataset.StudyInstanceUID))
    except Exception as exc:
        raise explain(exc, connection, "storing the DICOM SEG") from None
    failed = response.get("FailedSOPSequence") if response is not None else None
    if failed:
        reason = failed[0].get("FailureReason", "unknown")
        raise PacsError(f"PACS connection {connection.name!r} refused the DICOM SEG (failure reason {reason})")
