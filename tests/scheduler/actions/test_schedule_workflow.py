"""schedule_workflow: its Config and run()."""
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from config.errors import ActionError
from logs.models import WorkflowRun
from scheduler.actions.schedule_workflow import ScheduleWorkflow
from scheduler.models import ScheduledRun
from workflows.services import run_enqueue

action = ScheduleWorkflow()


def test_example_is_valid():
    assert ScheduleWorkflow.Config(data=ScheduleWorkflow.example).is_valid()


@pytest.mark.parametrize("config, field", [
    ({"workflow": "x"}, "at"),
    ({"workflow": "x", "at": "2030-01-01T00:00:00Z", "delay_seconds": 5}, "at"),
    ({"workflow": "Bad Name", "delay_seconds": 5}, "workflow"),
    ({"workflow": "x", "delay_seconds": -1}, "delay_seconds"),
    ({"workflow": "x", "at": "next tuesday"}, "at"),
    ({"workflow": "x", "delay_seconds": 5, "param": {}}, "param"),
])
def test_bad_configs_name_the_field(config, field):
    serializer = ScheduleWorkflow.Config(data=config)
    assert not serializer.is_valid()
    assert field in serializer.errors


def test_a_definition_must_say_when_even_with_expressions():
    assert action.validate_definition({"workflow": "x", "params": {}}) == {"at": "give either at or delay_seconds"}
    assert action.validate_definition({"workflow": "x", "at": "{{ now | add_days(1) }}"}) == {}


@pytest.fixture
def greet(make_workflow):
    return make_workflow("greet", parameters=[{"name": "name", "type": "text", "required": True}])


@pytest.mark.django_db
def test_run_schedules_after_a_delay_and_returns_id_and_due_at(greet, make_context):
    before = timezone.now()
    output = action.run(config=action.validate_runtime({"workflow": "greet", "params": {"name": "Ada"},
                                                        "delay_seconds": 90}), context=make_context())
    scheduled = ScheduledRun.objects.get()
    assert output == {"id": str(scheduled.id), "due_at": scheduled.due_at}
    assert timedelta(seconds=89) < scheduled.due_at - before < timedelta(seconds=92)
    assert (scheduled.status, scheduled.params) == ("pending", {"name": "Ada"})


@pytest.mark.django_db
def test_run_schedules_at_a_datetime(greet, make_context):
    at = datetime(2031, 5, 1, 12, tzinfo=UTC)
    output = action.run(config=action.validate_runtime({"workflow": "greet", "params": {"name": "Ada"}, "at": at}),
                        context=make_context())
    assert output["due_at"] == at


@pytest.mark.django_db
def test_the_scheduled_run_joins_the_calling_runs_chain(greet, make_context):
    caller = run_enqueue(workflow=greet, params={"name": "x"}, trigger="manual", dispatch_on_commit=False)
    action.run(config=action.validate_runtime({"workflow": "greet", "params": {"name": "y"}, "delay_seconds": 0}),
               context=make_context(run=caller))
    scheduled = ScheduledRun.objects.get()
    assert (scheduled.parent_run_id, scheduled.chain_length) == (caller.id, 1)


@pytest.mark.django_db
def test_bad_parameters_fail_the_step_naming_them(greet, make_context):
    with pytest.raises(ActionError, match="Bad parameters for 'greet': name: required"):
        action.run(config=action.validate_runtime({"workflow": "greet", "delay_seconds": 0}), context=make_context())


@pytest.mark.django_db
def test_an_unknown_or_disabled_workflow_fails_the_step(make_workflow, make_context):
    make_workflow("off", enabled=False)
    for name in ("nope", "off"):
        with pytest.raises(ActionError, match=f"No enabled workflow named '{name}'"):
            action.run(config=action.validate_runtime({"workflow": name, "delay_seconds": 0}), context=make_context())


@pytest.mark.django_db
def test_a_dry_run_schedules_nothing(greet, make_context):
    context = make_context(dry_run=True)
    output = action.run(config=action.validate_runtime({"workflow": "greet", "delay_seconds": 5}), context=context)
    assert output["id"] is None and context.captured[0]["kind"] == "schedule_workflow"
    assert not ScheduledRun.objects.exists() and not WorkflowRun.objects.exists()
