"""CSV for `?format=csv`: a list of flat dicts becomes a header and rows; an error body stays JSON-like."""

import csv
import io

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        if isinstance(data, dict):  # an error ({"detail": ...})
            data = [data]
        rows = list(data or [])
        columns: list[str] = list((renderer_context or {}).get("csv_columns") or [])
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        return out.getvalue().encode(self.charset)
