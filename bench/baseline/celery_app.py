"""The baseline's Celery application (`celery -A bench.baseline.celery_app worker`)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline.settings")

app = Celery("baseline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
