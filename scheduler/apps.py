"""Scheduled, listed, recurring and record-triggered runs, and the sweeper."""
from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    """The scheduler app; connects the record-trigger receiver."""

    name = "scheduler"
    verbose_name = "Scheduler"

    def ready(self):
        from scheduler import receivers  # noqa: F401 - connects record_changed
