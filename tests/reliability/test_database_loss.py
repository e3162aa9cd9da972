"""The engine when its database connection dies mid-step: the run resumes, it does not fail.

A drill (test_postgres_drop.py) finds this under load; here it is pinned in one process: the step's
own database connection is terminated while the step writes, as a PostgreSQL restart, a failover or
an administrator's pg_terminate_backend would.
"""
import pytest
from django.db import connection

from datastore import services as datastore_services
from logs.models import StepRun, WorkflowRun
from tests.reliability.drills import enqueue_many, marking_workflow
from workflows import engine

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_connection_lost_mid_step_leaves_the_run_to_resume_at_that_step(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    workflow = marking_workflow("fragile", steps=3)
    (run_id,) = enqueue_many(workflow, 1)
    original = datastore_services.record_create
    calls = []

    def record_create_on_a_dying_connection(**kwargs):
        calls.append(kwargs["fields"]["step"])
        if len(calls) == 2:  # the second step: its connection dies under it
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return original(**kwargs)

    monkeypatch.setattr(datastore_services, "record_create", record_create_on_a_dying_connection)
    monkeypatch.setattr(engine, "DATABASE_RETRY_SECONDS", 0, raising=False)
    monkeypatch.setattr("workflows.services.runs.dispatch", lambda *args, **kwargs: None)

    engine.run_execute(run_id)

    run = WorkflowRun.objects.get(id=run_id)
    assert run.status == "queued", (run.status, run.error)
    assert run.current_step == 1 and run.attempt == 1
    assert list(StepRun.objects.filter(run=run).values_list("index", "status")) == [(0, "succeeded")]

    engine.run_execute(run_id)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert list(StepRun.objects.filter(run=run).order_by("index").values_list("index", "status")) == [
        (0, "succeeded"), (1, "succeeded"), (2, "succeeded")]
    assert calls == [1, 2, 2, 3]


def test_a_connection_that_died_while_idle_is_replaced_by_the_claim(monkeypatch):
    """Workers skip the per-task health check (config/celery.py): a run whose worker's connection was
    terminated between tasks still runs at once, on a new connection, rather than waiting for the sweeper."""
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    from django.db import connections

    from config.celery import _no_health_check_per_task

    workflow = marking_workflow("idle", steps=2)
    (run_id,) = enqueue_many(workflow, 1)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)  # restored after the test
    _no_health_check_per_task()  # as in a worker's pool child
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()

    engine.run_execute(run_id)

    run = WorkflowRun.objects.get(id=run_id)
    assert run.status == "succeeded", (run.status, run.error)
    assert StepRun.objects.filter(run=run, status="succeeded").count() == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
    connection.close()  # the next test's connection reads its health checks from the settings again
