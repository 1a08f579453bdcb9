"""ASGI entry point (used for server-sent events under an ASGI server)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
application = get_asgi_application()
