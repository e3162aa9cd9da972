"""Scheduled, listed, recurring and record-triggered runs, and the sweeper."""
from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "scheduler"
    verbose_name = "Scheduler"
