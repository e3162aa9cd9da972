"""Workflow webhook endpoints, API tokens and the management REST API."""
from django.apps import AppConfig


class ApiEndpointsConfig(AppConfig):
    name = "api_endpoints"
    verbose_name = "API"
