"""WSGI entry point for gunicorn."""
import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()


def _warm_before_fork() -> None:
    """Import every view now, in gunicorn's master (`--preload`), so that its workers share those pages
    instead of each importing them on its first request; then keep the collector off them (gc.freeze),
    since its bookkeeping writes would copy every shared page into each worker."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view module
    gc.freeze()


_warm_before_fork()
