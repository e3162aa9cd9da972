"""Recurring events: write them, keep their beat PeriodicTask in step, and fire due slots from the ledger."""
import json
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from config.errors import ApplicationError, NotFoundError, ParameterError, ValidationError
from logs.models import RunStatus, RunTrigger, WorkflowRun
from scheduler import recurrence
from scheduler.models import MissedPolicy, OverlapPolicy, RecurringEvent
from workflows.models import Workflow

from .runs import run_is_active, run_write_finished
from .scheduled import live_definition, params_for_schedule

logger = logging.getLogger(__name__)

FIRE_TASK = "scheduler.tasks.recurring_event_fire"
# The fields that decide when an event fires; changing any of them recomputes its next slot.
SCHEDULE_FIELDS = ("frequency", "timezone", "start", "end")


def event_schedule(event: RecurringEvent) -> recurrence.Schedule:
    """The slots of an event, from its stored frequency, timezone, start (wall and instant) and end."""
    return recurrence.Schedule(
        recurrence.parse_frequency(event.frequency),
        recurrence.zone(event.timezone),
        start=event.start,
        anchor=datetime.fromisoformat(event.anchor),
        end=event.end,
    )


def _lock(events, skip_locked: bool = False):
    """events locked FOR UPDATE: only the event rows (not the joined workflow), where the database can."""
    features = connection.features
    options = {}
    if features.has_select_for_update_of:
        options["of"] = ("self",)
    if skip_locked and features.has_select_for_update_skip_locked:
        options["skip_locked"] = True
    return events.select_for_update(**options)


def _grace() -> timedelta:
    return timedelta(seconds=settings.ENGINE_ROOM_RECURRING_MISSED_AFTER_SECONDS)


def _instant(value: datetime | None, tz) -> tuple[datetime | None, datetime | None]:
    """(instant, wall time in tz) of a datetime: a naive one is a wall time in the event's timezone."""
    if value is None:
        return None, None
    if timezone.is_naive(value):
        return recurrence.from_wall(value, tz), value
    return value.astimezone(UTC), recurrence.to_wall(value, tz)


def _clean(workflow, params, frequency, timezone_name, start, end, missed, overlap) -> dict:
    """Validated, normalised event fields; ValidationError naming every bad one."""
    errors, cleaned = {}, {}
    try:
        cleaned["frequency"] = recurrence.parse_frequency(frequency).document
    except recurrence.FrequencyError as exc:
        errors["frequency"] = str(exc)
    tz = None
    try:
        tz = recurrence.zone(timezone_name)
        cleaned["timezone"] = timezone_name
    except recurrence.FrequencyError as exc:
        errors["timezone"] = str(exc)
    if missed not in MissedPolicy.values:
        errors["missed"] = f"must be one of {', '.join(MissedPolicy.values)}"
    if overlap not in OverlapPolicy.values:
        errors["overlap"] = f"must be one of {', '.join(OverlapPolicy.values)}"
    if tz is not None:
        cleaned["start"], anchor = _instant(start or timezone.now(), tz)
        cleaned["anchor"] = anchor.replace(tzinfo=None).isoformat()
        cleaned["end"] = _instant(end, tz)[0]
        if cleaned["end"] is not None and cleaned["end"] <= cleaned["start"]:
            errors["end"] = "must be after start"
    try:
        cleaned["params"] = params_for_schedule(workflow, params or {})
    except ParameterError as exc:
        errors.update({f"params.{key}": message for key, message in exc.fields.items()})
    except NotFoundError as exc:
        errors["workflow"] = exc.message
    if errors:
        summary = "; ".join(f"{key}: {message}" for key, message in errors.items())
        raise ValidationError(f"Invalid recurring event: {summary}", fields=errors)
    cleaned.update(missed=missed, overlap=overlap)
    return cleaned


def _first_slot(event: RecurringEvent, now: datetime) -> datetime | None:
    """The first slot an event takes from now on: a slot passed less than the grace ago still counts."""
    return event_schedule(event).first_at_or_after(now - _grace())


@transaction.atomic
def recurring_event_create(
    *,
    workflow: Workflow,
    params: dict | None = None,
    frequency,
    timezone_name: str = "UTC",
    start: datetime | None = None,
    end: datetime | None = None,
    missed: str = MissedPolicy.CATCH_UP,
    overlap: str = OverlapPolicy.SKIP,
    name: str = "",
    enabled: bool = True,
    created_by_run: WorkflowRun | None = None,
) -> RecurringEvent:
    """A recurring event and its beat PeriodicTask; ValidationError when it would never fire."""
    cleaned = _clean(workflow, params, frequency, timezone_name, start, end, missed, overlap)
    event = RecurringEvent(workflow=workflow, name=name, enabled=enabled, created_by_run=created_by_run, **cleaned)
    event.next_slot = _first_slot(event, timezone.now())
    if event.next_slot is None:
        raise ValidationError("The event would never fire: its end comes before its first time.",
                              fields={"end": "no fire time between start and end"})
    event.save()
    _sync_periodic_task(event)
    return event


@transaction.atomic
def recurring_event_update(*, event: RecurringEvent, **changes) -> RecurringEvent:
    """Change an event; a fire already due is taken first, so an edit never drops one silently."""
    locked = _lock(RecurringEvent.objects.select_related("workflow")).get(id=event.id)
    now = timezone.now()
    if locked.enabled and locked.next_slot is not None and locked.next_slot <= now:
        _fire_locked(locked, now)
    workflow = changes.get("workflow", locked.workflow)
    fields = {
        "params": changes.get("params", locked.params),
        "frequency": changes.get("frequency", locked.frequency),
        "timezone_name": changes.get("timezone_name", locked.timezone),
        # Without a new start, the wall time stays (read in the new timezone if that changes):
        # an instant cannot tell 02:30 on a DST day.
        "start": changes.get("start", datetime.fromisoformat(locked.anchor)),
        "end": changes.get("end", locked.end),
        "missed": changes.get("missed", locked.missed),
        "overlap": changes.get("overlap", locked.overlap),
    }
    cleaned = _clean(workflow, **fields)
    rescheduled = any(getattr(locked, key) != cleaned[key] for key in SCHEDULE_FIELDS) or (
        cleaned["anchor"] != locked.anchor
    )
    for key, value in cleaned.items():
        setattr(locked, key, value)
    locked.workflow = workflow
    locked.name = changes.get("name", locked.name)
    if rescheduled or locked.next_slot is None:
        # The new schedule takes over from now: its first slot not yet passed (and after the
        # last one fired, so a slot is never taken twice).
        after = max(now - timedelta(microseconds=1), locked.last_slot or now)
        locked.next_slot = event_schedule(locked).first_after(after)
        if locked.next_slot is None:
            raise ValidationError("The event would never fire again: its end has passed.",
                                  fields={"end": "no fire time left before the end"})
    locked.save()
    _sync_periodic_task(locked)
    return locked


@transaction.atomic
def recurring_event_set_enabled(*, event: RecurringEvent, enabled: bool) -> RecurringEvent:
    """Pause or resume an event; a resumed event takes its next slot from now (paused slots are not caught up)."""
    locked = _lock(RecurringEvent.objects.all()).get(id=event.id)
    if locked.enabled == enabled:
        return locked
    locked.enabled = enabled
    if enabled:
        after = max(timezone.now() - timedelta(microseconds=1), locked.last_slot or timezone.now())
        locked.next_slot = event_schedule(locked).first_after(after)
    locked.save(update_fields=["enabled", "next_slot", "modified"])
    _sync_periodic_task(locked)
    return locked


def recurring_events_pause(*, ids) -> int:
    """Pause many events at once; returns how many were running."""
    with transaction.atomic():
        events = RecurringEvent.objects.filter(id__in=list(ids), enabled=True)
        task_ids = list(events.exclude(periodic_task=None).values_list("periodic_task_id", flat=True))
        count = events.update(enabled=False, modified=timezone.now())
        PeriodicTask.objects.filter(id__in=task_ids).update(enabled=False, last_run_at=None)
        # .update() bypasses PeriodicTask.save(): beat only reloads when told.
        PeriodicTasks.update_changed()
    return count


@transaction.atomic
def recurring_event_delete(*, event: RecurringEvent) -> None:
    """Delete an event and (by scheduler.receivers) its PeriodicTask; the runs it started stay in the log."""
    event.delete()


def recurring_events_cancel(*, ids) -> int:
    """Delete the events with these ids (cancel_recurring); returns how many existed."""
    count = 0
    for event in RecurringEvent.objects.filter(id__in=list(ids)):
        recurring_event_delete(event=event)
        count += 1
    return count


# --- beat -----------------------------------------------------------------------------------


def _sync_periodic_task(event: RecurringEvent) -> PeriodicTask:
    """Create or update the event's PeriodicTask so that beat wakes the ledger at its slots."""
    frequency = recurrence.parse_frequency(event.frequency)
    anchor = datetime.fromisoformat(event.anchor)
    spec = recurrence.beat_schedule(frequency, anchor, event.timezone)
    task = event.periodic_task or PeriodicTask(name=f"engine-room recurring event {event.id}")
    task.task = FIRE_TASK
    task.kwargs = json.dumps({"event_id": str(event.id)})
    task.queue = settings.QUEUE_DEFAULT
    # A fire message that waited this long is stale: the dispatcher's fallback has fired the slot.
    task.expire_seconds = settings.ENGINE_ROOM_RECURRING_FIRE_EXPIRES_SECONDS
    task.expires = None
    task.description = f"Recurring event of workflow {event.workflow.name}: {frequency.describe()} ({event.timezone})"
    task.start_time = event.start
    task.enabled = event.enabled and event.next_slot is not None
    task.interval, task.crontab = None, None
    if "interval" in spec:
        # Not get_or_create: beat creates the same rows for its own entries, and two made at the same
        # moment (no unique constraint) would make every later get() fail.
        task.interval = IntervalSchedule.objects.filter(**spec["interval"]).order_by("id").first() or (
            IntervalSchedule.objects.create(**spec["interval"])
        )
        if event.next_slot is not None:
            # Align beat's interval clock with the ledger's slots (beat counts from last_run_at).
            task.last_run_at = event.next_slot - timedelta(seconds=frequency.seconds)
    else:
        task.crontab = CrontabSchedule.objects.filter(**spec["crontab"]).order_by("id").first() or CrontabSchedule.objects.create(
            **spec["crontab"]
        )
    task.save()
    if event.periodic_task_id != task.id:
        event.periodic_task = task
        RecurringEvent.objects.filter(id=event.id).update(periodic_task=task)
    return task


def _finish_beat(event: RecurringEvent) -> None:
    if event.periodic_task_id is not None:
        PeriodicTask.objects.filter(id=event.periodic_task_id).update(enabled=False, last_run_at=None)
        PeriodicTasks.update_changed()


# --- firing ---------------------------------------------------------------------------------


def recurring_event_fire(*, event_id, now: datetime | None = None) -> WorkflowRun | None:
    """Take the event's due slot, if any and not yet taken, and start (or skip) its run per the policies.

    Beat's fire and the dispatcher's fallback may both arrive for one slot, and beat may fire
    on candidate days that are not slots (month ends) or early: the locked ledger row decides.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # Someone else holding the row is firing this very slot: skip it rather than wait.
        events = _lock(RecurringEvent.objects.select_related("workflow__live_version", "last_run"), skip_locked=True)
        event = events.filter(id=event_id).first()
        if event is None or not event.enabled or event.next_slot is None or event.next_slot > now:
            return None
        return _fire_locked(event, now)


def _fire_locked(event: RecurringEvent, now: datetime) -> WorkflowRun | None:
    """The ledger step on a locked, due event: one slot taken, at most one run, next slot set."""
    schedule = event_schedule(event)
    latest, count = schedule.last_at_or_before(now, after=event.next_slot - timedelta(microseconds=1))
    if latest is None:
        # The stored next slot is no longer a slot (an end moved earlier): move on quietly.
        event.next_slot = schedule.first_after(now)
        event.save(update_fields=["next_slot", "modified"])
        return None
    late = now - latest
    missed = count - 1 + (late > _grace())
    caller = f"recurring {event.id} @ {latest.isoformat()}"
    # The last slot missed before the latest: what a skipped record of the earlier fires is named by.
    previous = schedule.last_at_or_before(
        latest - timedelta(microseconds=1), after=event.next_slot - timedelta(microseconds=1)
    )[0] if count > 1 else None
    run = _fire_run(event, latest, late, missed, caller, previous)
    event.last_slot = latest
    event.next_slot = schedule.first_after(max(now, latest))
    event.fire_count += 1
    if run is not None and run.status != RunStatus.SKIPPED:
        event.last_run = run
    event.save(update_fields=["last_slot", "next_slot", "fire_count", "last_run", "last_error", "modified"])
    if event.next_slot is None:
        _finish_beat(event)
    return run


def _fire_run(event: RecurringEvent, slot: datetime, late: timedelta, missed: int, caller: str,
              previous: datetime | None = None):
    """The run for a taken slot: started, skipped by a policy, or none when the workflow cannot run."""
    from workflows.parameters import coerce_params
    from workflows.services.runs import run_enqueue

    workflow = event.workflow
    try:
        definition = live_definition(workflow)
    except NotFoundError as exc:
        event.last_error = f"{slot.isoformat()}: not started: {exc.message}"
        logger.warning("Recurring event %s: %s", event.id, event.last_error)
        return None
    event.last_error = ""
    common = {"workflow": workflow, "trigger": RunTrigger.RECURRING, "caller": caller}
    if missed and event.missed == MissedPolicy.SKIP:
        if late > _grace():  # even the latest due slot is late: nothing runs
            return run_write_finished(
                params=event.params, status=RunStatus.SKIPPED, **common,
                error=f"Missed {missed} fire(s), the last due at {slot.isoformat()} ({int(late.total_seconds())} s "
                      f"ago), while the scheduler was not running; missed-run policy is skip.",
            )
        # The latest slot is on time and runs as usual; the fires missed before it are recorded as one
        # skipped run, named by the last of them (each slot is taken by exactly one run).
        run_write_finished(
            params=event.params, status=RunStatus.SKIPPED,
            **{**common, "caller": f"recurring {event.id} @ {previous.isoformat()}"},
            error=f"Missed {missed} fire(s) before the one due at {slot.isoformat()}, while the scheduler was "
                  f"not running; missed-run policy is skip.",
        )
        missed = 0
    if event.overlap == OverlapPolicy.SKIP and run_is_active(event.last_run):
        return run_write_finished(
            params=event.params, status=RunStatus.SKIPPED, **common,
            error=f"The previous run {event.last_run.id} of this event is still {event.last_run.status}; "
                  f"overlap policy is skip.",
        )
    try:
        params = coerce_params(definition.parameters, event.params, source="json")
    except ParameterError as exc:
        detail = "; ".join(f"{key}: {message}" for key, message in exc.fields.items())
        return run_write_finished(
            params=event.params, status=RunStatus.FAILED, error_code=exc.code, **common,
            error=f"Parameters do not fit the live version: {detail}",
        )
    if missed:
        common["caller"] = f"{caller} (catch-up of {missed} missed)"
    try:
        with transaction.atomic():
            return run_enqueue(params=params, **common)
    except ApplicationError as exc:
        # Refused by the engine (e.g. a WU budget used up): the slot is taken, the event stays on.
        event.last_error = f"{slot.isoformat()}: not started: {exc.message}"
        return None


def recurring_events_fire_overdue(*, now: datetime | None = None) -> int:
    """The fallback: fire events whose next slot passed without a beat fire; returns how many fired."""
    now = now or timezone.now()
    lag = timedelta(seconds=settings.ENGINE_ROOM_RECURRING_FALLBACK_SECONDS)
    ids = list(
        RecurringEvent.objects.filter(enabled=True, next_slot__lte=now - lag)
        .order_by("next_slot")
        .values_list("id", flat=True)[: settings.ENGINE_ROOM_DISPATCH_BATCH_SIZE]
    )
    fired = 0
    for event_id in ids:
        try:
            recurring_event_fire(event_id=event_id, now=now)
            fired += 1
        except Exception as exc:  # one broken event must not stop the others, nor fail every tick
            logger.exception("Recurring event %s could not fire; disabling it", event_id)
            _disable_broken(event_id, f"Disabled after an unexpected error: {type(exc).__name__}: {exc}")
    return fired


def _disable_broken(event_id, reason: str) -> None:
    """Switch off an event that cannot fire (STYLE.md: a scheduler loop logs and disables a bad entry)."""
    with transaction.atomic():
        RecurringEvent.objects.filter(id=event_id).update(enabled=False, last_error=reason[:2000])
        task_ids = RecurringEvent.objects.filter(id=event_id).values("periodic_task_id")
        PeriodicTask.objects.filter(id__in=task_ids).update(enabled=False, last_run_at=None)
        PeriodicTasks.update_changed()

