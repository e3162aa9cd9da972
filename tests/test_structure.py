"""Structural properties the benchmarks rely on (bench/BENCHMARKS.md), counted rather than timed:
statements per webhook call, statements per step, and at most one commit per step."""
import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from api_endpoints.services import token_create
from bench.fixtures import BODY, BUNDLE
from datastore.models import DataType, Record
from datastore.services import record_create
from logs.models import RunTrigger, StepRun, WorkflowRun
from workflows import engine
from workflows.models import Workflow
from workflows.selectors import version_definition
from workflows.services import bundle_import, run_enqueue

# Real transactions, not the test case's savepoints: the commits counted are the ones production makes.
pytestmark = pytest.mark.django_db(transaction=True)

# What one engine step may cost besides its BEGIN and COMMIT: the run row moved forward and the
# StepRun inserted, plus the check for a cancel request between steps.
MAX_STATEMENTS_PER_STEP = 3
# What a run costs besides its steps: the claim (read, conditional update) and the finish (update,
# and at most one read of the row).
MAX_STATEMENTS_PER_RUN = 4
TRANSACTION_CONTROL = ("BEGIN", "COMMIT")


@pytest.fixture
def workspace() -> str:
    """The benchmark's bundle (data types and workflows), one customer, and an admin token."""
    cache.clear()
    bundle_import(document=BUNDLE)
    record_create(data_type=DataType.objects.get(name="bench_customer"),
                  fields={"email": BODY["email"], "name": "Customer", "plan": "pro"})
    yield token_create(name="bench").value
    cache.clear()


def _call(token: str) -> int:
    response = Client().post("/api/wf/bench_async", json.dumps(BODY), content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.status_code


class _Traced:
    """An inline run's statements, whether each ran inside a transaction, and its commits."""

    def __init__(self, name: str, params: dict):
        workflow = Workflow.objects.select_related("live_version").get(name=name)
        version_definition(workflow.live_version_id)  # cached per process, as in a worker that has run it once
        self.run = run_enqueue(workflow=workflow, params=params, trigger=RunTrigger.MANUAL, dispatch_on_commit=False)
        self.writes: list[tuple[str, bool]] = []
        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(self._note):
            engine.run_execute(self.run.id)
        self.run.refresh_from_db()
        assert self.run.status == "succeeded", self.run.error
        self.statements = [q["sql"] for q in captured.captured_queries if q["sql"] not in TRANSACTION_CONTROL]
        self.commits = sum(1 for q in captured.captured_queries if q["sql"] == "COMMIT")

    def _note(self, execute, sql, params, many, context):
        verb = sql.split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            self.writes.append((sql[:80], connection.in_atomic_block))
        return execute(sql, params, many, context)


def test_an_async_webhook_call_is_one_insert_in_one_transaction(workspace):
    """Intake figure: with warm caches, a call with three typed parameters writes its run row and nothing else."""
    assert _call(workspace) == 202  # warms the token, workflow and definition caches
    with CaptureQueriesContext(connection) as captured:
        assert _call(workspace) == 202
    statements = [q["sql"].split(None, 1)[0] for q in captured.captured_queries]
    assert statements == ["BEGIN", "INSERT", "COMMIT"], [q["sql"][:100] for q in captured.captured_queries]
    assert WorkflowRun.objects.count() == 2


def test_statements_per_step_are_a_small_constant(workspace):
    """Drain figures: a run costs a fixed number of statements plus a small constant per step."""
    one = _Traced("bench_steps1", {"n": 1})
    three = _Traced("bench_steps3", {"n": 1})
    per_step = (len(three.statements) - len(one.statements)) / 2
    per_run = len(one.statements) - per_step
    assert per_step <= MAX_STATEMENTS_PER_STEP, three.statements
    assert per_run <= MAX_STATEMENTS_PER_RUN, one.statements
    assert StepRun.objects.filter(run=three.run).count() == 3


def test_each_step_commits_once_with_its_log_row(workspace):
    """At most one commit per step, and every StepRun is written inside its step's transaction."""
    three = _Traced("bench_steps3", {"n": 1})
    assert three.commits == 3
    step_inserts = [inside for sql, inside in three.writes if "logs_steprun" in sql]
    assert step_inserts == [True, True, True]
    # Outside a transaction only the run row's claim and finish are written (one statement each).
    outside = [sql for sql, inside in three.writes if not inside]
    assert len(outside) <= 2 and all(sql.startswith('UPDATE "logs_workflowrun"') for sql in outside), outside


def test_a_step_that_writes_a_record_commits_it_with_its_log_row(workspace):
    """The list item workflow (set_values → update_record): two steps, two commits, the record in the second."""
    items = DataType.objects.get(name="bench_item")
    item = Record.objects.create(data_type=items, data={"n": 1, "score": 4})
    traced = _Traced("bench_item", {"item": {"id": str(item.id), "type": "bench_item", "n": 1, "score": 4}})
    assert traced.commits == 2
    record_write = [inside for sql, inside in traced.writes if "datastore_record" in sql]
    assert record_write == [True]
    item.refresh_from_db()
    assert item.data["score"] == 5


def test_the_three_step_benchmark_workflow_commits_once_per_step(workspace):
    """The workflow of the sync and drain figures: set_values → find_records → return_response."""
    traced = _Traced("bench_async", dict(BODY))
    assert traced.commits == 3
    assert traced.run.response["body"] == {"total": 25.0, "found": 1, "plan": "pro"}
