"""schedule_recurring: its Config and run()."""
from datetime import datetime

import pytest

from config.errors import ActionError
from scheduler.actions.schedule_recurring import ScheduleRecurring
from scheduler.models import RecurringEvent
from scheduler.recurrence import from_wall, zone

action = ScheduleRecurring()
BERLIN = zone("Europe/Berlin")


def test_example_is_valid():
    assert ScheduleRecurring.Config(data=ScheduleRecurring.example).is_valid()


def test_defaults():
    config = action.validate_runtime({"workflow": "w", "frequency": "daily"})
    assert (config["timezone"], config["missed"], config["overlap"], config["end"]) == ("UTC", "catch_up", "skip", None)


@pytest.mark.parametrize("config, field", [
    ({"workflow": "w"}, "frequency"),
    ({"workflow": "w", "frequency": "hourly"}, "frequency"),
    ({"workflow": "w", "frequency": {"every": 5, "unit": "days"}}, "frequency"),
    ({"workflow": "w", "frequency": {"cron": "every day"}}, "frequency"),
    ({"workflow": "w", "frequency": "daily", "timezone": "CET+1"}, "timezone"),
    ({"workflow": "w", "frequency": "daily", "missed": "later"}, "missed"),
    ({"workflow": "w", "frequency": "daily", "overlap": "queue"}, "overlap"),
    ({"workflow": "w", "frequency": "daily", "start": "soon"}, "start"),
])
def test_bad_configs_name_the_field(config, field):
    serializer = ScheduleRecurring.Config(data=config)
    assert not serializer.is_valid()
    assert field in serializer.errors


def test_a_start_without_an_offset_stays_a_wall_time():
    config = action.validate_runtime({"workflow": "w", "frequency": "daily", "start": "2030-03-31T02:30:00"})
    assert config["start"] == datetime(2030, 3, 31, 2, 30) and config["start"].tzinfo is None


@pytest.mark.django_db
def test_run_creates_the_event_and_returns_its_next_fire_in_its_timezone(make_workflow, make_context, time_machine):
    time_machine.move_to(datetime(2030, 3, 1, 12, tzinfo=BERLIN), tick=False)
    make_workflow("nightly")
    output = action.run(config=action.validate_runtime({
        "workflow": "nightly", "frequency": "monthly", "timezone": "Europe/Berlin", "start": "2030-03-31T02:30",
        "missed": "skip",
    }), context=make_context())
    event = RecurringEvent.objects.get()
    assert output["id"] == str(event.id)
    # 2030-03-31 is the spring-forward night in Berlin: 02:30 does not exist, it fires at 03:30.
    assert output["next_fire_at"].isoformat() == "2030-03-31T03:30:00+02:00"
    assert event.next_slot == from_wall(datetime(2030, 3, 31, 2, 30), BERLIN)
    assert (event.missed, event.overlap, event.periodic_task.enabled) == ("skip", "skip", True)


@pytest.mark.django_db
def test_an_end_before_the_start_fails_the_step(make_workflow, make_context):
    make_workflow("nightly")
    with pytest.raises(ActionError, match="end"):
        action.run(config=action.validate_runtime({
            "workflow": "nightly", "frequency": "daily", "start": "2030-01-02T00:00", "end": "2030-01-01T00:00",
        }), context=make_context())
    assert not RecurringEvent.objects.exists()


@pytest.mark.django_db
def test_a_dry_run_creates_nothing(make_workflow, make_context):
    make_workflow("nightly")
    context = make_context(dry_run=True)
    output = action.run(config=action.validate_runtime({"workflow": "nightly", "frequency": "daily"}), context=context)
    assert output["id"] is None and not RecurringEvent.objects.exists()
