"""The one error type of the imaging readers: a message a user can act on, and an HTTP status."""


class IngestError(ValueError):
    """An upload that cannot become a case. `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def unsupported(message: str) -> IngestError:
    return IngestError(message, status=415, code="unsupported")


def too_large(message: str) -> IngestError:
    return IngestError(message, status=413, code="too_large")
