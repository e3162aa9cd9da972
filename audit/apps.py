"""The audit log: who signed in, changed tokens, secrets or roles, and published workflows."""
from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import receivers  # noqa: F401  (connects the sign-in and model-change receivers)
