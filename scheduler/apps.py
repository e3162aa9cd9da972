"""Scheduled, listed, recurring and record-triggered runs, and the sweeper."""
from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    """The scheduler app; connects its receivers and registers the batch count the engine writes."""

    name = "scheduler"
    verbose_name = "Scheduler"

    def ready(self):
        from scheduler import receivers  # noqa: F401 - connects its receivers, registers its ending write
