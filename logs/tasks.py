"""Celery tasks of the logs app: retention and failure alerts; delivery options live here only."""
import logging

from celery import shared_task

from . import alerts, services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def runs_prune() -> dict:
    """The beat task of retention; a pass that stopped at its time limit sends the next one at once."""
    result = services.runs_prune()
    if result.more:
        runs_prune.apply_async(countdown=1)
    return {"deleted": result.deleted, "batches": result.batches, "more": result.more, "vacuumed": result.vacuumed}


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=3)
def failure_alert_send(run_id: str) -> bool:
    """Mail one failure alert; an SMTP server that is down is retried a few times (OSError)."""
    return alerts.failure_alert_send(run_id=run_id)
