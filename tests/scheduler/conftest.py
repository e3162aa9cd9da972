"""Fixtures for the scheduler tests: workflows, a broker stand-in, and running queued runs inline."""

import pytest
from django.db import transaction

from logs.models import RunStatus, WorkflowRun
from tests.integration.conftest import processes  # noqa: F401 - real worker and beat, for test_integration
from workflows.engine import run_execute
from workflows.services import workflow_create, workflow_publish


def definition(name, steps=(), parameters=(), **settings) -> dict:
    return {"format": 1, "name": name, "parameters": list(parameters), "steps": list(steps), **settings}


@pytest.fixture
def make_workflow(db):
    """make_workflow(name, steps=..., parameters=..., publish=True, **settings) -> a (published) Workflow."""

    def make(name="wf", steps=(), parameters=(), publish=True, **settings):
        workflow = workflow_create(definition=definition(name, steps, parameters, **settings))
        if publish:
            workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
        return workflow

    return make


@pytest.fixture
def sent(monkeypatch):
    """Run ids handed to the broker, in order; nothing reaches a real broker in unit tests."""
    messages: list[str] = []

    def dispatch(run_id, queue, countdown=None, timeout_seconds=None):
        messages.append(str(run_id))

    def dispatch_many(run_ids, queue, countdown, timeout_seconds):
        messages.extend(str(run_id) for run_id in run_ids)

    monkeypatch.setattr("workflows.services.runs.dispatch", dispatch)
    monkeypatch.setattr("workflows.services.runs.dispatch_many", dispatch_many)
    return messages


@pytest.fixture
def drain(sent):
    """drain(limit) executes queued runs inline, as workers would, until none is left; returns them."""

    def run_all(limit: int = 200) -> list[WorkflowRun]:
        executed = []
        for _ in range(limit):
            queued = WorkflowRun.objects.filter(status=RunStatus.QUEUED).order_by("created").first()
            if queued is None:
                break
            run_execute(queued.id)
            executed.append(queued.id)
        return list(WorkflowRun.objects.filter(id__in=executed).order_by("created"))

    return run_all


def committed(function, *args, **kwargs):
    """Call function in its own transaction (a transactional test's commit hooks then run)."""
    with transaction.atomic():
        return function(*args, **kwargs)
