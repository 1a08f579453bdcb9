"""Serves the built browser app's index.html (the embedded default needs no separate web server)."""

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie
def frontend_index(request):
    index = settings.FRONTEND_DIST / "index.html"
    if not index.is_file():
        return HttpResponse(
            "<h1>MedSAM2 annotation platform</h1><p>The browser app is not built yet: "
            "run <code>npm --prefix frontend ci && npm --prefix frontend run build</code>. "
            'The API is at <a href="/api/">/api/</a>.</p>',
            content_type="text/html",
        )
    return HttpResponse(index.read_text(), content_type="text/html")
