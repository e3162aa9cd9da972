"""WSGI entry point of the baseline project, served by the same gunicorn command line as Engine Room."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline.settings")
application = get_wsgi_application()

# Tasks are sent through the app configured from these settings, as Engine Room's web process does.
from bench.baseline.celery_app import app as celery_app  # noqa: E402,F401
