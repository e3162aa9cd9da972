"""Celery tasks of the API layer: housekeeping only."""
from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def idempotency_keys_prune() -> int:
    """Delete idempotency keys older than ENGINE_ROOM_IDEMPOTENCY_HOURS."""
    return services.idempotency_keys_prune()
