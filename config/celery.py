"""The Celery application; configuration comes from Django settings (CELERY_*)."""
import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init

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


@worker_process_init.connect
def _no_health_check_per_task(**kwargs):
    """A pool child skips CONN_HEALTH_CHECKS' SELECT 1 before each task: a run's first statement, its
    claim, retries once on a connection that died while idle (workflows/engine.py), which is all the check
    would do, for a round trip per run. Any other task that meets a dead connection fails once, and
    close_old_connections drops that connection before the next one."""
    from django.db import connections

    for alias in connections:
        connections[alias].settings_dict["CONN_HEALTH_CHECKS"] = False
        connections[alias].health_check_enabled = False


@worker_init.connect
def _warm_before_fork(**kwargs):
    """Import what a run uses now, in the worker's parent, so that the pool's children share those pages
    rather than each importing them on its first task; then keep the collector off them (gc.freeze),
    since its bookkeeping writes would copy every shared page into each child."""
    import django

    django.setup()
    from django.urls import get_resolver

    from workflows import engine  # noqa: F401 - the engine and, through its registry, every action

    get_resolver().url_patterns  # noqa: B018 - actions build URLs (files, run links) from the URLconf
    gc.freeze()
