"""WSGI entry point (gunicorn annotation_app.wsgi:application)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_app.settings")
application = get_wsgi_application()
