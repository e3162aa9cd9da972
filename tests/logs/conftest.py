"""Fixtures for the logs tests: real runs through the engine, people with roles, and clean caches."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import transaction

from config.celery import app as celery_app
from logs import budget
from logs.models import StepRun, WorkflowRun
from tests.workflows.conftest import invoices, make_workflow, run_now  # noqa: F401  (shared fixtures)
from workflows.engine import run_execute
from workflows.services import run_enqueue

# A step that fails at once, without retries: there is no invoice with this id.
MISSING_INVOICE = {
    "key": "charge", "action": "delete_record",
    "config": {"type": "invoice", "id": "00000000-0000-0000-0000-000000000000"},
}
SET_VALUES = {"key": "prepare", "action": "set_values", "config": {"values": {"amount": "{{ params.amount }}"}}}


@pytest.fixture(autouse=True)
def _fresh_state(settings):
    """No figures or budget counts remembered from another test; the dashboard computed on each request."""
    settings.LOG_DASHBOARD_CACHE_SECONDS = 0
    cache.clear()
    budget.forget_usage()
    yield
    budget.forget_usage()


@pytest.fixture
def start_run(db):
    """start_run(workflow, params, trigger=..., caller=..., parent=..., execute=True) -> the run, as a worker leaves it."""

    def start(workflow, params=None, *, trigger="webhook", caller="token:stripe", execute=True, parent=None):
        with transaction.atomic():
            run = run_enqueue(workflow=workflow, params=params or {}, trigger=trigger, caller=caller,
                              parent=parent, dispatch_on_commit=False)
        if execute:
            run_execute(run.id)
        run.refresh_from_db()
        return run

    return start


def age(run: WorkflowRun, *, days: float = 0, hours: float = 0) -> WorkflowRun:
    """Move a run (and its steps) back in time, as if it had run that long ago."""
    delta = timedelta(days=days, hours=hours)
    fields = {name: getattr(run, name) - delta for name in ("created", "started_at", "finished_at") if getattr(run, name)}
    WorkflowRun.objects.filter(id=run.id).update(**fields)
    for step in StepRun.objects.filter(run=run):
        StepRun.objects.filter(id=step.id).update(started_at=step.started_at - delta)
    run.refresh_from_db()
    return run


def make_person(role: str, username: str | None = None) -> User:
    """A person with a role: admin (staff), editor or viewer (by Group), or none (no group: an editor)."""
    user = User.objects.create_user(username or f"{role}-person", f"{role}@example.com", "pw-for-tests-only")
    if role == "admin":
        user.is_staff = True
        user.save()
    elif role in ("editor", "viewer"):
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def editor_client(client, db):
    client.force_login(make_person("editor"))
    return client


@pytest.fixture
def viewer_client(client, db):
    client.force_login(make_person("viewer"))
    return client


@pytest.fixture
def eager_tasks():
    """Celery tasks sent during the test run at once, in this process (the alert task)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
