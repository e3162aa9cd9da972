"""Beat-driven tasks of the scheduler: the sweeper that recovers runs nobody is working on."""
from celery import shared_task

from workflows.services import runs_sweep as sweep


@shared_task(ignore_result=True)
def runs_sweep() -> dict:
    """Resend runs whose worker died (expired lease) or whose message was lost (stale queued)."""
    return sweep()
