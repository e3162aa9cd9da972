"""cancel_scheduled: its Config and run()."""
from datetime import timedelta
from uuid import uuid4

import pytest
from django.utils import timezone

from scheduler.actions.cancel_scheduled import CancelScheduled
from scheduler.models import ScheduledRun
from scheduler.services import scheduled_run_create, scheduled_runs_dispatch

action = CancelScheduled()


def test_example_is_valid():
    assert action.validate_definition(CancelScheduled.example) == {}
    assert CancelScheduled.Config(data={"id": str(uuid4())}).is_valid()


@pytest.mark.parametrize("config, field", [
    ({}, "id"),
    ({"id": str(uuid4()), "ids": [str(uuid4())]}, "id"),
    ({"id": "42"}, "id"),
    ({"ids": ["42"]}, "ids"),
])
def test_bad_configs_name_the_field(config, field):
    serializer = CancelScheduled.Config(data=config)
    assert not serializer.is_valid()
    assert field in serializer.errors


@pytest.mark.django_db
def test_run_cancels_one_or_many_that_have_not_started(make_workflow, make_context):
    workflow = make_workflow("w")
    soon = timezone.now() + timedelta(hours=1)
    rows = [scheduled_run_create(workflow=workflow, params={}, due_at=soon) for _ in range(4)]
    started = scheduled_run_create(workflow=workflow, params={}, due_at=timezone.now() - timedelta(seconds=1))
    scheduled_runs_dispatch()
    assert action.run(config=action.validate_runtime({"id": str(rows[0].id)}), context=make_context()) == {
        "cancelled": 1
    }
    ids = [str(r.id) for r in rows[1:3]] + [str(started.id), str(uuid4())]
    assert action.run(config=action.validate_runtime({"ids": ids}), context=make_context()) == {"cancelled": 2}
    assert ScheduledRun.objects.filter(status="pending").count() == 1
    assert ScheduledRun.objects.get(id=started.id).status == "dispatched"


@pytest.mark.django_db
def test_a_dry_run_cancels_nothing(make_workflow, make_context):
    row = scheduled_run_create(workflow=make_workflow("w"), params={}, due_at=timezone.now() + timedelta(hours=1))
    output = action.run(config=action.validate_runtime({"id": str(row.id)}), context=make_context(dry_run=True))
    assert output["cancelled"] == 0 and ScheduledRun.objects.get().status == "pending"
