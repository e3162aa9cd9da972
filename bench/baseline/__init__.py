"""The baseline: a bare Django + DRF endpoint and Celery tasks with no workflow logic, measured beside Engine Room."""
