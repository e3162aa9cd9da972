"""Beat-driven tasks of the scheduler: the dispatcher, recurring fires, batch recounts and the sweeper."""
import logging

from celery import shared_task

from workflows.services import runs_sweep as sweep

from . import services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def runs_sweep() -> dict:
    """Resend runs whose worker died (expired lease) or whose message was lost (stale queued)."""
    return sweep()


@shared_task(ignore_result=True)
def scheduler_dispatch() -> dict:
    """The frequent tick: start due scheduled runs, and fire recurring events beat has not fired."""
    result = {}
    # Each part logs its own failure: a bad row must not stop the other part (nor the next tick).
    try:
        result["scheduled"] = services.scheduled_runs_dispatch()
    except Exception:
        logger.exception("Dispatching scheduled runs failed; the next tick retries")
    try:
        result["recurring"] = services.recurring_events_fire_overdue()
    except Exception:
        logger.exception("Firing overdue recurring events failed; the next tick retries")
    return result


@shared_task(ignore_result=True)
def recurring_event_fire(event_id: str) -> None:
    """Beat's fire of one recurring event; the event row decides whether a slot is due."""
    services.recurring_event_fire(event_id=event_id)


@shared_task(ignore_result=True)
def batches_recount() -> int:
    """Bring the done/failed counts of open batches up to date."""
    return services.batches_recount()
