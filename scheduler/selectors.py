"""Reads of the scheduler: scheduled runs, batches and recurring events, and an event's next fire times."""
import uuid
from datetime import datetime

from django.db.models import QuerySet

from config.errors import NotFoundError
from scheduler import recurrence
from scheduler.models import Batch, RecurringEvent, ScheduledRun, ScheduledRunStatus


def _uuid(value, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError(f"No {what} with id {value!r}.") from None


def scheduled_run_list(*, workflow: str | None = None, status: str | None = None,
                       batch: Batch | None = None) -> QuerySet[ScheduledRun]:
    """Scheduled runs, soonest first; by workflow name, status (by default what waits: pending and paused), batch."""
    runs = ScheduledRun.objects.select_related("run", "batch")
    if not status:
        runs = runs.filter(status__in=(ScheduledRunStatus.PENDING, ScheduledRunStatus.PAUSED))
    elif status != "all":
        runs = runs.filter(status=status)
    if workflow:
        runs = runs.filter(workflow_name=workflow)
    if batch is not None:
        runs = runs.filter(batch=batch)
    if status in (ScheduledRunStatus.DISPATCHED, ScheduledRunStatus.CANCELLED, "all"):
        return runs.order_by("-due_at", "id")
    return runs.order_by("due_at", "id")


def scheduled_run_get(*, id) -> ScheduledRun:
    try:
        return ScheduledRun.objects.select_related("run", "batch").get(id=_uuid(id, "scheduled run"))
    except ScheduledRun.DoesNotExist:
        raise NotFoundError(f"No scheduled run with id {id!r}.") from None


def scheduled_workflow_names() -> list[str]:
    """Names of the workflows that have scheduled runs, for the filter."""
    return list(ScheduledRun.objects.order_by("workflow_name").values_list("workflow_name", flat=True).distinct())


def batch_list() -> QuerySet[Batch]:
    return Batch.objects.order_by("-created")


def batch_get(*, id) -> Batch:
    try:
        return Batch.objects.get(id=_uuid(id, "batch"))
    except Batch.DoesNotExist:
        raise NotFoundError(f"No batch with id {id!r}.") from None


def recurring_event_list() -> QuerySet[RecurringEvent]:
    return RecurringEvent.objects.select_related("workflow", "last_run").order_by("workflow__name", "created")


def recurring_event_get(*, id) -> RecurringEvent:
    try:
        return RecurringEvent.objects.select_related("workflow", "last_run").get(id=_uuid(id, "recurring event"))
    except RecurringEvent.DoesNotExist:
        raise NotFoundError(f"No recurring event with id {id!r}.") from None


def recurring_event_next_fires(*, event: RecurringEvent, count: int = 5) -> list[datetime]:
    """The event's next count fire times, in its own timezone (none while paused or finished)."""
    from scheduler.services.recurring import event_schedule

    if not event.enabled or event.next_slot is None:
        return []
    tz = recurrence.zone(event.timezone)
    return [slot.astimezone(tz) for slot in event_schedule(event).upcoming(event.next_slot, count)]
