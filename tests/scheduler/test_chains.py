"""Runs that schedule runs: a recursive workflow stops at its condition, or at MAX_CHAIN_LENGTH."""
import pytest
from django.db import transaction

from logs.models import RunStatus, StepRun, WorkflowRun
from scheduler.services import scheduled_runs_dispatch
from workflows.services import run_enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def start(workflow, params):
    with transaction.atomic():
        return run_enqueue(workflow=workflow, params=params, trigger="manual")


def run_chain(drain, rounds=20):
    """Alternate workers and the dispatcher until nothing is left to do."""
    for _ in range(rounds):
        executed = drain()
        dispatched = scheduled_runs_dispatch()
        if not executed and not dispatched:
            return
    raise AssertionError("the chain did not stop")


def test_a_recursive_workflow_stops_at_its_condition(make_workflow, drain):
    countdown = make_workflow(
        "countdown",
        parameters=[{"name": "n", "type": "integer", "required": True}],
        steps=[{"key": "again", "action": "schedule_workflow", "only_when": "{{ params.n > 0 }}",
                "config": {"workflow": "countdown", "params": {"n": "{{ params.n - 1 }}"}, "delay_seconds": 0}}],
    )
    first = start(countdown, {"n": 3})
    run_chain(drain)
    runs = list(WorkflowRun.objects.order_by("chain_length"))
    assert [(r.params["n"], r.chain_length, r.status) for r in runs] == [
        (3, 0, "succeeded"), (2, 1, "succeeded"), (1, 2, "succeeded"), (0, 3, "succeeded")
    ]
    assert all(r.root_run_id == first.id for r in runs[1:])
    assert [r.parent_run_id for r in runs[1:]] == [r.id for r in runs[:-1]]
    assert StepRun.objects.get(run=runs[-1]).status == "skipped"


def test_a_workflow_that_schedules_itself_forever_is_stopped_by_max_chain_length(make_workflow, drain, settings):
    settings.ENGINE_ROOM_MAX_CHAIN_LENGTH = 3
    forever = make_workflow("forever", steps=[
        {"key": "again", "action": "schedule_workflow", "config": {"workflow": "forever", "delay_seconds": 0}},
    ])
    start(forever, {})
    run_chain(drain)
    runs = list(WorkflowRun.objects.order_by("chain_length"))
    assert [(r.chain_length, r.status) for r in runs] == [
        (0, "succeeded"), (1, "succeeded"), (2, "succeeded"), (3, "failed")
    ]
    last = runs[-1]
    step = StepRun.objects.get(run=last)
    assert last.error_code == "step_failed" and step.error_code == "chain_limit"
    assert "exceeds MAX_CHAIN_LENGTH=3: forever → forever → forever → forever → forever" in step.error
    assert "MAX_CHAIN_LENGTH=3" in last.error
    assert last.status == RunStatus.FAILED
