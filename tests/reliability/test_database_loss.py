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


def terminate_own_backend() -> int:
    """Terminate this test's database connection from another one, as a restart would while it idles;
    returns the terminated backend's pid."""
    from django.db import connections

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    return pid


def test_a_connection_that_died_while_idle_is_replaced_by_the_claim(monkeypatch):
    """Workers skip the per-task health check (config/celery.py): a run whose worker's connection was
    terminated between tasks still runs at once, on a new connection, rather than waiting for the sweeper."""
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")

    from config.celery import _no_health_check_per_task

    workflow = marking_workflow("idle", steps=2)
    (run_id,) = enqueue_many(workflow, 1)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)  # restored after the test
    _no_health_check_per_task()  # as in a worker's pool child
    pid = terminate_own_backend()

    engine.run_execute(run_id)

    run = WorkflowRun.objects.get(id=run_id)
    assert run.status == "succeeded", (run.status, run.error)
    assert StepRun.objects.filter(run=run, status="succeeded").count() == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
    connection.close()  # the next test's connection reads its health checks from the settings again


def _webhook_workspace():
    import json

    from api_endpoints.services import token_create
    from bench.fixtures import BODY, BUNDLE
    from workflows.services import bundle_import

    bundle_import(document=BUNDLE)
    return json.dumps(BODY), token_create(name="idle").value


def _call(client, body, token):
    return client.post("/api/wf/bench_async", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_webhook_call_skips_the_health_check_and_survives_a_connection_that_died_while_idle(monkeypatch, settings):
    """Webhook calls make no SELECT 1 before their INSERT (pages still do); a call whose connection was
    terminated between requests still starts exactly one run, on a new connection."""
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    from django.core.cache import cache
    from django.db import close_old_connections
    from django.test import Client

    cache.clear()
    # No rate window: a call opening a new minute would record the token's use first (an UPDATE).
    settings.ENGINE_ROOM_RATE_LIMITS = {"token": None, "ip": None}
    body, token = _webhook_workspace()
    client = Client()
    assert _call(client, body, token).status_code == 202  # warms the caches
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.health_check_enabled = True
    checks = []
    real_is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or real_is_usable())

    close_old_connections()  # what each real request starts with
    assert _call(client, body, token).status_code == 202
    assert checks == []
    close_old_connections()
    assert client.get("/healthz?scope=web").status_code == 200  # any other path reads the database after a check
    assert checks == [1]

    terminate_own_backend()
    close_old_connections()
    response = _call(client, body, token)

    assert response.status_code == 202, response.content
    assert checks == [1]  # the INSERT replaced the connection, not a health check
    assert WorkflowRun.objects.filter(trigger="webhook").count() == 3
    assert WorkflowRun.objects.filter(id=response.json()["run_id"]).exists()
    connection.close()
    cache.clear()


def test_a_run_insert_whose_answer_was_lost_is_not_written_twice(monkeypatch):
    """The connection dies after PostgreSQL wrote the run but before it answered: the retry finds the row
    by its id and the caller gets that run, not a second one."""
    from django.db import OperationalError

    from config import sql

    real = sql.insert_rows
    calls = []

    def written_then_lost(model, objs):
        calls.append(1)
        real(model, objs)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(sql, "insert_rows", written_then_lost)
    workflow = marking_workflow("lost", steps=1)
    from workflows.services import run_enqueue

    run = run_enqueue(workflow=workflow, params={}, trigger="webhook", dispatch_on_commit=False)

    assert len(calls) == 2
    assert list(WorkflowRun.objects.values_list("id", flat=True)) == [run.id]
