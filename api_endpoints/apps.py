"""Workflow webhook endpoints, API tokens and the management REST API."""
from django.apps import AppConfig


class ApiEndpointsConfig(AppConfig):
    name = "api_endpoints"
    verbose_name = "API"

    def ready(self):
        from . import signals  # noqa: F401 - connects the cache invalidation receivers
