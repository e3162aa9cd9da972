"""Workflow definitions, expressions, the action catalogue and the engine."""
from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"
