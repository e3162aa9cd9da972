"""Helpers to build workflows and run them inline through the real engine."""
import pytest
from django.db import transaction

from datastore.services import data_type_create
from logs.models import WorkflowRun
from workflows.engine import run_execute
from workflows.services import run_enqueue, workflow_create, workflow_publish


def definition(name="wf", steps=(), parameters=(), **settings) -> dict:
    return {"format": 1, "name": name, "parameters": list(parameters), "steps": list(steps), **settings}


@pytest.fixture
def make_workflow(db):
    """Create (and by default publish) a workflow from a definition."""

    def make(name="wf", steps=(), parameters=(), publish=True, **settings):
        workflow = workflow_create(definition=definition(name, steps, parameters, **settings))
        if publish:
            workflow_publish(workflow=workflow)
        return workflow

    return make


@pytest.fixture
def run_now(db):
    """Enqueue a run (without a broker message) and execute it in this process, as a worker would."""

    def run(workflow, params=None, *, draft=False, dry_run=False, execute=True) -> WorkflowRun:
        with transaction.atomic():
            created = run_enqueue(
                workflow=workflow, params=params or {}, trigger="manual", draft=draft, dispatch_on_commit=False
            )
            if dry_run:
                WorkflowRun.objects.filter(id=created.id).update(dry_run=True)
        if execute:
            run_execute(created.id)
        created.refresh_from_db()
        return created

    return run


@pytest.fixture
def invoices(db):
    """A data type with a few typed fields."""
    return data_type_create(
        name="invoice",
        fields=[
            {"name": "amount", "type": "number", "required": True},
            {"name": "status", "type": "text"},
            {"name": "customer", "type": "text"},
        ],
    )
