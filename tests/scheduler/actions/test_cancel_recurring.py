"""cancel_recurring: its Config and run()."""
from uuid import uuid4

import pytest
from django_celery_beat.models import PeriodicTask

from scheduler.actions.cancel_recurring import CancelRecurring
from scheduler.models import RecurringEvent
from scheduler.services import recurring_event_create

action = CancelRecurring()


def test_example_is_valid():
    assert action.validate_definition(CancelRecurring.example) == {}


@pytest.mark.parametrize("config", [{}, {"id": "abc"}, {"id": str(uuid4()), "ids": []}])
def test_bad_configs_are_refused(config):
    assert not CancelRecurring.Config(data=config).is_valid()


@pytest.mark.django_db
def test_run_stops_the_event_and_its_beat_task(make_workflow, make_context):
    event = recurring_event_create(workflow=make_workflow("w"), frequency="daily")
    assert action.run(config=action.validate_runtime({"id": str(event.id)}), context=make_context()) == {
        "cancelled": 1
    }
    assert not RecurringEvent.objects.exists() and not PeriodicTask.objects.filter(id=event.periodic_task_id).exists()
    assert action.run(config=action.validate_runtime({"id": str(event.id)}), context=make_context()) == {
        "cancelled": 0
    }


@pytest.mark.django_db
def test_a_dry_run_cancels_nothing(make_workflow, make_context):
    event = recurring_event_create(workflow=make_workflow("w"), frequency="daily")
    output = action.run(config=action.validate_runtime({"id": str(event.id)}), context=make_context(dry_run=True))
    assert output["cancelled"] == 0 and RecurringEvent.objects.exists()
