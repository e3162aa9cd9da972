"""Beat task of the audit log: retention."""
from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def audit_prune() -> int:
    """Drop audit events past AUDIT_RETENTION_DAYS."""
    return services.audit_prune()
