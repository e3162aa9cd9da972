"""The baseline app."""
from django.apps import AppConfig


class BaselineConfig(AppConfig):
    name = "bench.baseline"
    label = "baseline"
