"""One rule for a full disk or an exhausted storage quota (ENOSPC, EDQUOT), wherever it happens.

In a request, the API answers 507 Insufficient Storage with `REQUEST_REASON` (lib/errors.py's handler,
for every view); the view's transaction is rolled back and the code that was writing removes what it
had written (the upload's staging folder, the partly stored original). In the worker, the ingest
marks the case failed with `INGEST_REASON` and removes its stored and staged files
(imaging/ingest.py). Neither message names a server path: users cannot act on one.
"""

import errno

STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

REQUEST_REASON = (
    "the server's storage is full: nothing of this request was kept. Try again once an administrator has freed space."
)
INGEST_REASON = (
    "the server's storage is full: the image could not be converted and nothing of it was kept. "
    "Upload it again once an administrator has freed space."
)


def is_storage_full(exc: BaseException | None) -> bool:
    """True when `exc`, or an exception it was raised from or during, is ENOSPC or EDQUOT."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
