"""WSGI entry point for gunicorn."""
import gc
import os

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class MiddlewareHandler(WSGIHandler):
    """A WSGIHandler that loads `middleware` instead of settings.MIDDLEWARE; build it at start-up only."""

    def __init__(self, middleware: list[str]):
        self.middleware = middleware
        super().__init__()

    def load_middleware(self, is_async=False):
        # BaseHandler reads the list from settings. Swapped for this one call, before any request is
        # served (at import, before gunicorn's threads start), so that no other reader sees it.
        whole = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.middleware
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = whole


class CallsAndPages:
    """Workflow calls through settings.WEBHOOK_MIDDLEWARE, every other request through settings.MIDDLEWARE."""

    # The browser's middleware cost a call about 5% of its instructions in the web process (bench O39).
    # request_started and request_finished name MiddlewareHandler as the sender of a call's.

    def __init__(self):
        self.pages = get_wsgi_application()  # sets Django up: only then may the URL module be imported
        from api_endpoints.urls import CALL_PATH

        self.calls = MiddlewareHandler(settings.WEBHOOK_MIDDLEWARE)
        self.is_call = CALL_PATH.fullmatch

    def __call__(self, environ, start_response):
        handler = self.calls if self.is_call(environ.get("PATH_INFO", "")) else self.pages
        return handler(environ, start_response)


application = CallsAndPages()


def _warm_before_fork() -> None:
    """Import every view now, in gunicorn's master (`--preload`), so that its workers share those pages
    instead of each importing them on its first request; then keep the collector off them (gc.freeze),
    since its bookkeeping writes would copy every shared page into each worker."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view module
    gc.freeze()


_warm_before_fork()
