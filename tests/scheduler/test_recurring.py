"""Recurring events: the ledger fires each slot once at the right local time, and keeps beat in step."""
import json
from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from config.errors import ValidationError
from logs.models import RunStatus, WorkflowRun
from scheduler.models import RecurringEvent
from scheduler.recurrence import from_wall, zone
from scheduler.selectors import recurring_event_next_fires
from scheduler.services import (
    recurring_event_create,
    recurring_event_delete,
    recurring_event_fire,
    recurring_event_set_enabled,
    recurring_event_update,
    recurring_events_fire_overdue,
    recurring_events_pause,
)

pytestmark = pytest.mark.django_db
BERLIN = zone("Europe/Berlin")


@pytest.fixture
def report(make_workflow):
    return make_workflow("report", parameters=[{"name": "kind", "type": "text"}],
                         steps=[{"action": "set_values", "config": {"values": {"kind": "{{ params.kind }}"}}}])


def berlin(*args) -> datetime:
    return from_wall(datetime(*args), BERLIN)


def fired_at(event) -> list[str]:
    """The local times (event timezone) at which the event's runs were started."""
    runs = WorkflowRun.objects.filter(caller__startswith=f"recurring {event.id}").order_by("created")
    return [run.created.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M %Z") for run in runs]


def walk(time_machine, event, expected_local: list[datetime]) -> None:
    """Move the clock to just before and just after each expected fire, firing as beat and the dispatcher would."""
    for due in expected_local:
        time_machine.move_to(due - timedelta(minutes=1), tick=False)
        assert recurring_event_fire(event_id=event.id) is None, f"fired early, before {due}"
        assert recurring_events_fire_overdue() == 0
        time_machine.move_to(due + timedelta(seconds=1), tick=False)
        run = recurring_event_fire(event_id=event.id)
        assert run is not None and run.status == RunStatus.QUEUED, f"no run at {due}"
        # A duplicate fire (beat and the fallback both arriving) takes nothing.
        assert recurring_event_fire(event_id=event.id) is None


def create(workflow, time_machine, now, **kwargs):
    time_machine.move_to(now, tick=False)
    kwargs.setdefault("overlap", "allow")
    kwargs.setdefault("timezone_name", "Europe/Berlin")
    return recurring_event_create(workflow=workflow, **kwargs)


# --- DST and month ends, walked with time-machine ------------------------------------------


def test_daily_0230_berlin_over_both_dst_changes(report, time_machine):
    event = create(report, time_machine, berlin(2025, 3, 28, 12, 0), frequency="daily",
                   start=datetime(2025, 3, 29, 2, 30))
    walk(time_machine, event, [berlin(2025, 3, 29, 2, 30), berlin(2025, 3, 30, 3, 30), berlin(2025, 3, 31, 2, 30)])
    time_machine.move_to(berlin(2025, 10, 25, 12, 0), tick=False)
    recurring_event_set_enabled(event=event, enabled=False)
    recurring_event_set_enabled(event=event, enabled=True)
    walk(time_machine, event, [
        datetime(2025, 10, 26, 0, 30, tzinfo=UTC),  # 02:30 CEST, the first of the two 02:30s
        berlin(2025, 10, 27, 2, 30),
    ])
    # The second 02:30 of 10-26 (01:30 UTC) passed between those fires without one.
    assert fired_at(event) == [
        "2025-03-29 02:30 CET", "2025-03-30 03:30 CEST", "2025-03-31 02:30 CEST",
        "2025-10-26 02:30 CEST", "2025-10-27 02:30 CET",
    ]


def test_weekly_over_both_dst_changes(report, time_machine):
    event = create(report, time_machine, berlin(2025, 3, 20, 12, 0), frequency="weekly",
                   start=datetime(2025, 3, 23, 2, 30))
    walk(time_machine, event, [berlin(2025, 3, 23, 2, 30), berlin(2025, 3, 30, 3, 30), berlin(2025, 4, 6, 2, 30)])
    time_machine.move_to(berlin(2025, 10, 20, 12, 0), tick=False)
    recurring_event_set_enabled(event=event, enabled=False)
    recurring_event_set_enabled(event=event, enabled=True)
    walk(time_machine, event, [datetime(2025, 10, 26, 0, 30, tzinfo=UTC), berlin(2025, 11, 2, 2, 30)])
    assert fired_at(event)[-2:] == ["2025-10-26 02:30 CEST", "2025-11-02 02:30 CET"]


def test_monthly_on_the_31st_over_month_ends_and_dst(report, time_machine):
    event = create(report, time_machine, berlin(2025, 1, 30, 12, 0), frequency="monthly",
                   start=datetime(2025, 1, 31, 2, 30))
    walk(time_machine, event, [berlin(2025, 1, 31, 2, 30), berlin(2025, 2, 28, 2, 30), berlin(2025, 3, 31, 2, 30),
                               berlin(2025, 4, 30, 2, 30), berlin(2025, 5, 31, 2, 30)])
    time_machine.move_to(berlin(2025, 10, 1, 12, 0), tick=False)
    recurring_event_set_enabled(event=event, enabled=False)
    recurring_event_set_enabled(event=event, enabled=True)
    walk(time_machine, event, [berlin(2025, 10, 31, 2, 30), berlin(2025, 11, 30, 2, 30)])
    assert fired_at(event) == [
        "2025-01-31 02:30 CET", "2025-02-28 02:30 CET", "2025-03-31 02:30 CEST", "2025-04-30 02:30 CEST",
        "2025-05-31 02:30 CEST", "2025-10-31 02:30 CET", "2025-11-30 02:30 CET",
    ]


def test_beat_fires_on_candidate_days_take_nothing(report, time_machine):
    """Monthly-on-the-31st's crontab fires on the 28th-31st; only the month's due day starts a run."""
    event = create(report, time_machine, berlin(2025, 4, 1, 12, 0), frequency="monthly",
                   start=datetime(2025, 1, 31, 2, 30))
    for day in (28, 29):
        time_machine.move_to(berlin(2025, 4, day, 2, 30, 1), tick=False)
        assert recurring_event_fire(event_id=event.id) is None
    time_machine.move_to(berlin(2025, 4, 30, 2, 30, 1), tick=False)
    assert recurring_event_fire(event_id=event.id) is not None
    assert fired_at(event) == ["2025-04-30 02:30 CEST"]


def test_quarterly_from_the_31st(report, time_machine):
    event = create(report, time_machine, berlin(2024, 8, 1, 12, 0), frequency="quarterly",
                   start=datetime(2024, 8, 31, 2, 30))
    walk(time_machine, event, [berlin(2024, 8, 31, 2, 30), berlin(2024, 11, 30, 2, 30), berlin(2025, 2, 28, 2, 30),
                               berlin(2025, 5, 31, 2, 30)])
    assert fired_at(event) == ["2024-08-31 02:30 CEST", "2024-11-30 02:30 CET", "2025-02-28 02:30 CET",
                               "2025-05-31 02:30 CEST"]


def test_yearly_on_a_spring_forward_night_and_on_leap_day(report, time_machine):
    dst = create(report, time_machine, berlin(2024, 3, 1, 12, 0), frequency="yearly",
                 start=datetime(2024, 3, 31, 2, 30))
    walk(time_machine, dst, [berlin(2024, 3, 31, 3, 30), berlin(2025, 3, 31, 2, 30)])
    assert fired_at(dst) == ["2024-03-31 03:30 CEST", "2025-03-31 02:30 CEST"]
    leap = create(report, time_machine, berlin(2024, 2, 1, 12, 0), frequency="yearly",
                  start=datetime(2024, 2, 29, 12, 0))
    walk(time_machine, leap, [berlin(2024, 2, 29, 12, 0), berlin(2025, 2, 28, 12, 0)])
    assert fired_at(leap) == ["2024-02-29 12:00 CET", "2025-02-28 12:00 CET"]


# --- Missed-run and overlap policies ------------------------------------------------------------


def hourly_from_eight(report, time_machine, settings):
    """Two hourly events from 08:00 (Berlin), one per missed-run policy, with a 120 s grace."""
    settings.ENGINE_ROOM_RECURRING_MISSED_AFTER_SECONDS = 120
    start = berlin(2025, 6, 1, 8, 0)
    return [create(report, time_machine, start - timedelta(hours=1), frequency={"every": 1, "unit": "hours"},
                   start=start, missed=policy) for policy in ("catch_up", "skip")]


def test_after_downtime_catch_up_runs_once_and_skip_logs_a_skipped_run(report, time_machine, settings):
    catch_up, skip = hourly_from_eight(report, time_machine, settings)
    # Nothing fired for five hours (beat down); it comes back at 13:20.
    time_machine.move_to(berlin(2025, 6, 1, 13, 20), tick=False)
    assert recurring_events_fire_overdue() == 2
    assert recurring_events_fire_overdue() == 0
    caught = WorkflowRun.objects.get(caller__startswith=f"recurring {catch_up.id}")
    assert caught.status == RunStatus.QUEUED and "catch-up of 6 missed" in caught.caller
    skipped = WorkflowRun.objects.get(caller__startswith=f"recurring {skip.id}")
    assert skipped.status == RunStatus.SKIPPED and "missed-run policy is skip" in skipped.error
    for event in (catch_up, skip):
        event.refresh_from_db()
        assert event.last_slot == berlin(2025, 6, 1, 13, 0) and event.next_slot == berlin(2025, 6, 1, 14, 0)


def test_back_on_time_for_a_slot_skip_runs_it_and_records_the_missed_ones(report, time_machine, settings):
    """Beat comes back just after a slot: that slot runs under either policy; the fires missed before it
    are one catch-up run's label (catch_up) or one skipped run of their own (skip)."""
    catch_up, skip = hourly_from_eight(report, time_machine, settings)
    # Down from before 08:00; back at 11:00:30, half a minute after the 11:00 slot (08, 09, 10 missed).
    time_machine.move_to(berlin(2025, 6, 1, 11, 0, 30), tick=False)
    assert recurring_events_fire_overdue() == 2

    caught = WorkflowRun.objects.get(caller__startswith=f"recurring {catch_up.id}")
    assert caught.status == RunStatus.QUEUED and "catch-up of 3 missed" in caught.caller
    runs = WorkflowRun.objects.filter(caller__startswith=f"recurring {skip.id}")
    assert sorted(runs.values_list("status", flat=True)) == [RunStatus.QUEUED, RunStatus.SKIPPED]
    assert "catch-up" not in runs.get(status=RunStatus.QUEUED).caller
    skipped = runs.get(status=RunStatus.SKIPPED)
    # Named by the last missed slot, so that each slot is taken by exactly one run.
    assert "Missed 3 fire(s) before" in skipped.error and "@ 2025-06-01T08:00:00+00:00" in skipped.caller  # 10:00 in Berlin
    skip.refresh_from_db()
    assert skip.last_run.status == RunStatus.QUEUED and skip.next_slot == berlin(2025, 6, 1, 12, 0)


def test_a_fire_late_by_less_than_the_grace_still_runs_under_skip(report, time_machine, settings):
    settings.ENGINE_ROOM_RECURRING_MISSED_AFTER_SECONDS = 120
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily",
                   start=datetime(2025, 6, 1, 8, 0), missed="skip")
    time_machine.move_to(berlin(2025, 6, 1, 8, 1, 30), tick=False)
    assert recurring_event_fire(event_id=event.id).status == RunStatus.QUEUED


def test_overlap_skip_writes_a_skipped_run_while_the_previous_is_unfinished(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 59), frequency={"every": 1, "unit": "minutes"},
                   start=berlin(2025, 6, 1, 8, 0), overlap="skip")
    time_machine.move_to(berlin(2025, 6, 1, 8, 0, 1), tick=False)
    first = recurring_event_fire(event_id=event.id)
    time_machine.move_to(berlin(2025, 6, 1, 8, 1, 1), tick=False)
    second = recurring_event_fire(event_id=event.id)
    assert second.status == RunStatus.SKIPPED and str(first.id) in second.error and "overlap" in second.error
    WorkflowRun.objects.filter(id=first.id).update(status=RunStatus.SUCCEEDED)
    time_machine.move_to(berlin(2025, 6, 1, 8, 2, 1), tick=False)
    assert recurring_event_fire(event_id=event.id).status == RunStatus.QUEUED


def test_overlap_allow_starts_runs_side_by_side(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 59), frequency={"every": 1, "unit": "minutes"},
                   start=berlin(2025, 6, 1, 8, 0), overlap="allow")
    for minute in (0, 1):
        time_machine.move_to(berlin(2025, 6, 1, 8, minute, 1), tick=False)
        assert recurring_event_fire(event_id=event.id).status == RunStatus.QUEUED


def test_the_fallback_leaves_a_fresh_slot_to_beat(report, time_machine, settings):
    settings.ENGINE_ROOM_RECURRING_FALLBACK_SECONDS = 5
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    time_machine.move_to(berlin(2025, 6, 1, 8, 0, 2), tick=False)
    assert recurring_events_fire_overdue() == 0
    time_machine.move_to(berlin(2025, 6, 1, 8, 0, 6), tick=False)
    assert recurring_events_fire_overdue() == 1
    assert fired_at(event) == ["2025-06-01 08:00 CEST"]


def test_a_run_starts_the_live_version_with_the_events_params(report, time_machine, make_workflow):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily",
                   start=datetime(2025, 6, 1, 8, 0), params={"kind": "sales"})
    time_machine.move_to(berlin(2025, 6, 1, 8, 0, 1), tick=False)
    run = recurring_event_fire(event_id=event.id)
    assert run.params == {"kind": "sales"} and run.trigger == "recurring"
    assert run.version_id == report.live_version_id


def test_an_unpublished_workflow_takes_the_slot_and_says_why(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    report.enabled = False
    report.save()
    time_machine.move_to(berlin(2025, 6, 1, 8, 0, 1), tick=False)
    assert recurring_event_fire(event_id=event.id) is None
    event.refresh_from_db()
    assert "disabled" in event.last_error and event.next_slot == berlin(2025, 6, 2, 8, 0)
    assert not WorkflowRun.objects.exists()


# --- Writing events and keeping beat in step ---------------------------------------------


def test_create_writes_a_periodic_task_in_the_events_timezone(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 15))
    task = PeriodicTask.objects.get(id=event.periodic_task_id)
    assert task.task == "scheduler.tasks.recurring_event_fire" and task.enabled
    assert json.loads(task.kwargs) == {"event_id": str(event.id)}
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("15", "8", "Europe/Berlin")
    assert task.interval is None


def test_an_interval_event_aligns_beat_with_its_slots(report, time_machine):
    event = create(report, time_machine, datetime(2025, 6, 1, 7, 0, tzinfo=UTC),
                   frequency={"every": 10, "unit": "minutes"}, start=datetime(2025, 6, 1, 6, 0, tzinfo=UTC))
    task = PeriodicTask.objects.get(id=event.periodic_task_id)
    assert (task.interval.every, task.interval.period) == (10, "minutes")
    assert event.next_slot == datetime(2025, 6, 1, 7, 0, tzinfo=UTC)
    assert task.last_run_at + timedelta(minutes=10) == event.next_slot


def test_next_five_fires_are_in_the_events_timezone(report, time_machine):
    event = create(report, time_machine, berlin(2025, 3, 27, 12, 0), frequency="daily",
                   start=datetime(2025, 3, 28, 2, 30))
    fires = recurring_event_next_fires(event=event)
    assert [f.strftime("%d %H:%M %Z") for f in fires] == [
        "28 02:30 CET", "29 02:30 CET", "30 03:30 CEST", "31 02:30 CEST", "01 02:30 CEST"
    ]


def test_editing_params_keeps_the_next_fire(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    before = event.next_slot
    event = recurring_event_update(event=event, params={"kind": "ops"})
    assert event.next_slot == before and event.params == {"kind": "ops"}


def test_editing_when_a_fire_is_due_takes_that_fire_first(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0),
                   params={"kind": "old"})
    # The slot has just passed and nobody fired it yet; the user changes the time to 09:00.
    time_machine.move_to(berlin(2025, 6, 1, 8, 0, 2), tick=False)
    event = recurring_event_update(event=event, start=datetime(2025, 6, 1, 9, 0), params={"kind": "new"})
    run = WorkflowRun.objects.get()
    assert run.params == {"kind": "old"} and fired_at(event) == ["2025-06-01 08:00 CEST"]
    assert event.next_slot == berlin(2025, 6, 1, 9, 0)
    task = PeriodicTask.objects.get(id=event.periodic_task_id)
    assert task.crontab.hour == "9"


def test_changing_the_timezone_keeps_the_wall_time(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    event = recurring_event_update(event=event, timezone_name="America/New_York")
    assert event.next_slot.astimezone(zone("America/New_York")).strftime("%H:%M") == "08:00"


def test_bad_input_names_each_field(report, time_machine):
    with pytest.raises(ValidationError) as caught:
        create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency={"every": 0, "unit": "weeks"},
               timezone_name="Mars/Base", missed="maybe", params={"kind": ["not", "text"]})
    assert set(caught.value.fields) >= {"frequency", "timezone", "missed"}


def test_an_end_before_the_first_fire_is_refused(report, time_machine):
    with pytest.raises(ValidationError) as caught:
        create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="monthly",
               start=datetime(2025, 6, 1, 8, 0), end=datetime(2025, 6, 1, 7, 30))
    assert "end" in caught.value.fields


def test_the_last_slot_before_the_end_finishes_the_event_and_its_beat_task(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily",
                   start=datetime(2025, 6, 1, 8, 0), end=datetime(2025, 6, 2, 9, 0))
    walk(time_machine, event, [berlin(2025, 6, 1, 8, 0), berlin(2025, 6, 2, 8, 0)])
    event.refresh_from_db()
    assert event.next_slot is None and recurring_event_next_fires(event=event) == []
    assert not PeriodicTask.objects.get(id=event.periodic_task_id).enabled


def test_pause_and_resume(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    event = recurring_event_set_enabled(event=event, enabled=False)
    assert not PeriodicTask.objects.get(id=event.periodic_task_id).enabled
    time_machine.move_to(berlin(2025, 6, 3, 10, 0), tick=False)
    assert recurring_events_fire_overdue() == 0
    event = recurring_event_set_enabled(event=event, enabled=True)
    # Paused days are not caught up: the next fire is tomorrow's.
    assert event.next_slot == berlin(2025, 6, 4, 8, 0)
    assert PeriodicTask.objects.get(id=event.periodic_task_id).enabled


def test_bulk_pause_tells_beat(report, time_machine):
    events = [create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily",
                     start=datetime(2025, 6, 1, 8, minute)) for minute in (0, 1)]
    time_machine.move_to(berlin(2025, 6, 1, 7, 30), tick=False)
    assert recurring_events_pause(ids=[e.id for e in events]) == 2
    assert not PeriodicTask.objects.filter(id__in=[e.periodic_task_id for e in events], enabled=True).exists()
    assert PeriodicTasks.last_change() == berlin(2025, 6, 1, 7, 30)


def test_delete_removes_the_periodic_task_and_keeps_the_runs(report, time_machine):
    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    time_machine.move_to(berlin(2025, 6, 1, 8, 0, 1), tick=False)
    recurring_event_fire(event_id=event.id)
    recurring_event_delete(event=event)
    assert not RecurringEvent.objects.exists() and not PeriodicTask.objects.filter(
        name__startswith="engine-room recurring").exists()
    assert WorkflowRun.objects.count() == 1


def test_an_event_that_cannot_fire_is_disabled_with_the_reason_and_the_others_still_fire(report, time_machine):
    broken = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    healthy = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily",
                     start=datetime(2025, 6, 1, 8, 0))
    RecurringEvent.objects.filter(id=broken.id).update(frequency={"every": "often"})  # e.g. edited by hand
    time_machine.move_to(berlin(2025, 6, 1, 8, 1), tick=False)
    assert recurring_events_fire_overdue() == 1
    broken.refresh_from_db()
    assert not broken.enabled and "Disabled after an unexpected error" in broken.last_error
    assert not PeriodicTask.objects.get(id=broken.periodic_task_id).enabled
    assert fired_at(healthy) == ["2025-06-01 08:01 CEST"]


def test_deleting_the_workflow_takes_its_events_beat_tasks_along(report, time_machine):
    from workflows.services import workflow_delete

    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    workflow_delete(workflow=report)
    assert not RecurringEvent.objects.exists()
    assert not PeriodicTask.objects.filter(id=event.periodic_task_id).exists()


def test_a_run_the_engine_refuses_takes_the_slot_and_keeps_the_event(report, time_machine, monkeypatch):
    from config.errors import ApplicationError
    from workflows.services import runs

    def refuse(**kwargs):
        raise ApplicationError("The monthly WU budget is used up.")

    event = create(report, time_machine, berlin(2025, 6, 1, 7, 0), frequency="daily", start=datetime(2025, 6, 1, 8, 0))
    monkeypatch.setattr(runs, "run_enqueue", refuse)
    time_machine.move_to(berlin(2025, 6, 1, 8, 0, 6), tick=False)
    assert recurring_events_fire_overdue() == 1
    event.refresh_from_db()
    assert event.enabled and "budget is used up" in event.last_error
    assert event.next_slot == berlin(2025, 6, 2, 8, 0)
