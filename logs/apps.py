"""Runs and step runs: the read side of everything the engine does."""
from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "logs"
    verbose_name = "Logs"

    def ready(self):
        from . import receivers  # noqa: F401  (connects the run_finished receivers)
