"""gunicorn's settings file (read from the working directory): gunicorn serves production traffic, so it
refuses to start with Django's DEBUG on, which would show tracebacks, settings and server paths to
anyone who makes a request fail. Development uses `manage.py runserver` (scripts/run.sh)."""

import os
import sys

_debug = os.environ.get("DEBUG")
if _debug is None or _debug.strip().lower() not in {"0", "false", "no", "off", ""}:
    sys.exit(
        "gunicorn will not start with DEBUG on (the default when DEBUG is unset): set DEBUG=0 together "
        "with SECRET_KEY and ALLOWED_HOSTS (see docs/SECURITY.md), or use `manage.py runserver` to develop."
    )
