"""Celery tasks of the engine: take an id, call the engine; delivery options live here only."""
from celery import shared_task

from workflows import engine, run_lists


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_execute(run_id: str) -> None:
    """Execute one run; a redelivered message for a claimed or finished run does nothing."""
    engine.run_execute(run_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_execute_many(run_ids: list[str], queue: str, timeout_seconds: int) -> None:
    """Execute the runs of one message in turn; a redelivered message skips what is claimed or finished."""
    engine.run_execute_many(run_ids, queue, timeout_seconds)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def runs_drain(queue: str, timeout_seconds: int, token: str) -> None:
    """Execute runs taken one at a time from a queue's list (workflows/run_lists.py)."""
    run_lists.drain(queue, timeout_seconds, token)


@shared_task(ignore_result=True)
def files_prune() -> int:
    """The beat task that deletes created files whose download links have expired."""
    from workflows.files import files_prune as prune

    return prune()
