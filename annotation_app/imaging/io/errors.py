"""The one error type of the imaging readers: a message a user can act on, and an HTTP status."""

from annotation_app.lib.redact import redact_paths


class IngestError(ValueError):
    """An upload that cannot become a case. `status` is the HTTP status the API answers with.

    The message is shown to users, so any server path in it (a reader naming the file it failed on) is
    cut down to the file's name inside the upload."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid"):
        message = redact_paths(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def unsupported(message: str) -> IngestError:
    return IngestError(message, status=415, code="unsupported")


def too_large(message: str) -> IngestError:
    return IngestError(message, status=413, code="too_large")
