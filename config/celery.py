"""The Celery application; configuration comes from Django settings (CELERY_*)."""
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("engine_room")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections(task=None, **kwargs):
    """Keep a worker's database connection per CONN_MAX_AGE and CONN_HEALTH_CHECKS, as a web request does."""
    if task is not None and task.request.is_eager:
        return  # an eager task runs inside its caller's transaction (tests): leave its connection alone
    from django.db import close_old_connections

    close_old_connections()
