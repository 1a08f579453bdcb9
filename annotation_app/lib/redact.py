"""Server paths out of every message a user reads.

Readers, decoders and storage name the files they failed on by their full path ("/srv/app/var/tmp/
upload-k3j2/extracted/ct/1.dcm", "/data/media/cases/7/image.npy"); repeated to a user, that maps the
server's folders. `redact_paths` turns a file inside an upload's private folder into its name inside
the upload ("ct/1.dcm"), strips the server's own folders (media root, var, temp, code, Python) and
shortens any other absolute path to its last part.
"""

import re
import sys
import tempfile
from pathlib import Path

#: the private folders of an upload (staging, ingest work, label import) and the upload's own subfolder
_PRIVATE = re.compile(r"""(?:[^\s'"()\[\]<>]*/)?(?:upload|ingest-\d+|labels|export)-[\w]+/(?:(?:files|extracted)/)?""")
_SEGMENT = r"""[^\s'"<>|;,()\[\]{}/]+"""
_ABSOLUTE = re.compile(rf"""(?<![\w.~:/-])(?:/{_SEGMENT}){{2,}}/?""")


def _roots() -> tuple[str, ...]:
    from django.conf import settings

    candidates = [
        getattr(settings, name, None)
        for name in ("MEDIA_ROOT", "VAR_DIR", "STATIC_ROOT", "BASE_DIR", "FILE_UPLOAD_TEMP_DIR", "IMPORT_DIR")
    ]
    candidates += [tempfile.gettempdir(), sys.prefix, sys.base_prefix, str(Path.home())]
    roots = set()
    for candidate in candidates:
        if not candidate:
            continue
        for form in (Path(candidate), Path(candidate).resolve()):
            text = str(form).rstrip("/")
            if text.count("/") >= 1 and len(text) > 1:
                roots.add(text)
    return tuple(sorted(roots, key=len, reverse=True))


def redact_paths(text: str) -> str:
    if not text or "/" not in text:
        return text
    text = _PRIVATE.sub("", text)
    for root in _roots():
        text = re.sub(rf"""(?<![\w/.-]){re.escape(root)}(?:/|(?=[\s'"),;:\]]|$))""", "", text)
    return _ABSOLUTE.sub(lambda match: match.group(0).rstrip("/").rsplit("/", 1)[-1], text)

