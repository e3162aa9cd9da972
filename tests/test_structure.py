"""Structural properties the benchmarks rely on (bench/BENCHMARKS.md), counted rather than timed:
statements per webhook call, statements per run and per step, and at most one commit per step."""
import json
import re

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
from logs.signals import run_answered
from workflows import engine
from workflows.models import Workflow
from workflows.selectors import version_definition, version_number
from workflows.services import bundle_import, run_enqueue

# Real transactions, not the test case's savepoints: the commits counted are the ones production makes.
pytestmark = pytest.mark.django_db(transaction=True)


def transaction_control(sql: str) -> bool:
    return sql == "COMMIT" or sql.startswith("BEGIN")  # SQLite's is BEGIN IMMEDIATE


WRITTEN = re.compile(r'\b(?:UPDATE|INSERT INTO|DELETE FROM) "(\w+)"')


# What a run costs in all: the claim (one conditional UPDATE … RETURNING) and its end, which writes the
# run row and its step logs: on PostgreSQL one statement (a data-modifying WITH), elsewhere an UPDATE and a
# multi-row INSERT. Steps that only read add no statement of their own.
def statements_per_run() -> int:
    return 2 if connection.vendor == "postgresql" else 3


def transactions(queries: list[dict]) -> list[list[str]]:
    """The transactions that wrote, in order, each as the tables it wrote: a BEGIN … COMMIT, or a
    statement autocommitted on its own."""
    done, current = [], None
    for query in queries:
        sql = query["sql"]
        if sql.startswith("BEGIN"):
            current = []
        elif sql == "COMMIT":
            if current:
                done.append(current)
            current = None
        elif tables := WRITTEN.findall(sql):
            if current is None:
                done.append(tables)
            else:
                current.extend(tables)
    return done


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
    """An inline run's statements and the transactions that wrote, the claim's first."""

    def __init__(self, name: str, params: dict):
        workflow = Workflow.objects.select_related("live_version").get(name=name)
        # Cached per process, as in a worker that has run the version once.
        version_definition(workflow.live_version_id)
        version_number(workflow.live_version_id)
        self.run = run_enqueue(workflow=workflow, params=params, trigger=RunTrigger.MANUAL, dispatch_on_commit=False)
        with CaptureQueriesContext(connection) as captured:
            engine.run_execute(self.run.id)
        self.run.refresh_from_db()
        assert self.run.status == "succeeded", self.run.error
        self.statements = [q["sql"] for q in captured.captured_queries if not transaction_control(q["sql"])]
        self.transactions = transactions(captured.captured_queries)
        assert self.transactions[0] == ["logs_workflowrun"], self.transactions  # the claim
        # Commits after the claim: what the steps and the run's end cost.
        self.commits = len(self.transactions) - 1


def test_an_async_webhook_call_is_one_insert(workspace):
    """Intake figure: with warm caches, a call with three typed parameters writes its run row and nothing else,
    in one autocommitted statement; with an Idempotency-Key the key's row joins it in one transaction."""
    assert _call(workspace) == 202  # warms the token, workflow and definition caches
    with CaptureQueriesContext(connection) as captured:
        assert _call(workspace) == 202
    statements = [q["sql"].split(None, 1)[0] for q in captured.captured_queries]
    assert statements == ["INSERT"], [q["sql"][:100] for q in captured.captured_queries]
    with CaptureQueriesContext(connection) as captured:
        keyed = Client().post("/api/wf/bench_async", json.dumps(BODY), content_type="application/json",
                              HTTP_AUTHORIZATION=f"Bearer {workspace}", HTTP_IDEMPOTENCY_KEY="order-1")
    assert keyed.status_code == 202
    statements = [q["sql"].split(None, 1)[0] for q in captured.captured_queries]
    assert statements[0] == "BEGIN" and statements[-1] == "COMMIT" and statements.count("INSERT") == 2, statements
    assert WorkflowRun.objects.count() == 3


def test_read_only_steps_add_no_statements_to_a_run(workspace):
    """Drain figures: a run is claimed and ended in three statements, whether it has one step or three."""
    one = _Traced("bench_steps1", {"n": 1})
    three = _Traced("bench_steps3", {"n": 1})
    assert len(one.statements) == len(three.statements) == statements_per_run(), three.statements
    assert three.statements[0].startswith('UPDATE "logs_workflowrun"') and "RETURNING" in three.statements[0]
    assert list(StepRun.objects.filter(run=three.run).values_list("key", flat=True)) == ["s1", "s2", "s3"]


def test_a_run_of_read_only_steps_commits_once_with_every_log_row(workspace):
    """At most one commit per step: three read-only steps are logged together with the run's end."""
    three = _Traced("bench_steps3", {"n": 1})
    assert three.commits == 1
    # The claim, then the run's end with the three log rows, in one transaction.
    assert [sorted(tables) for tables in three.transactions] == [["logs_workflowrun"], ["logs_steprun", "logs_workflowrun"]]


def test_each_read_only_step_commits_when_progress_is_due_at_once(workspace, settings):
    """ENGINE_ROOM_PROGRESS_SECONDS bounds how long finished steps stay unseen: at 0 each commits."""
    settings.ENGINE_ROOM_PROGRESS_SECONDS = 0
    three = _Traced("bench_steps3", {"n": 1})
    assert three.commits == 3
    assert StepRun.objects.filter(run=three.run).count() == 3


def test_a_step_that_writes_a_record_commits_it_with_its_log_row(workspace):
    """The list item workflow (set_values → update_record): the record, both log rows and the run's end
    in one transaction."""
    items = DataType.objects.get(name="bench_item")
    item = Record.objects.create(data_type=items, data={"n": 1, "score": 4})
    traced = _Traced("bench_item", {"item": {"id": str(item.id), "type": "bench_item", "n": 1, "score": 4}})
    assert traced.commits == 1
    assert sorted(traced.transactions[1]) == ["datastore_record", "logs_steprun", "logs_workflowrun"], traced.transactions
    assert StepRun.objects.filter(run=traced.run).count() == 2
    item.refresh_from_db()
    assert item.data["score"] == 5


def test_a_write_in_the_middle_commits_the_read_only_steps_before_it(workspace):
    """set_values → create_record → set_values: the write's transaction carries the first step's row;
    the run's end carries the last one."""
    bundle_import(document={"format": 1, "workflows": [{"format": 1, "name": "bench_mixed", "steps": [
        {"key": "a", "action": "set_values", "config": {"values": {"n": 1}}},
        {"key": "b", "action": "create_record", "config": {"type": "bench_item", "fields": {"n": "{{ steps.a.n }}"}}},
        {"key": "c", "action": "set_values", "config": {"values": {"id": "{{ steps.b.id }}"}}},
    ]}]})
    traced = _Traced("bench_mixed", {})
    assert traced.commits == 2
    # The record with a's and b's log rows; then the run's end with c's.
    write, end = traced.transactions[1:]
    assert "datastore_record" in write and "logs_steprun" in write and "datastore_record" not in end, traced.transactions
    assert list(StepRun.objects.filter(run=traced.run).values_list("key", flat=True)) == ["a", "b", "c"]


def test_the_three_step_benchmark_workflow_commits_once(workspace):
    """The workflow of the sync and drain figures: set_values → find_records → return_response."""
    traced = _Traced("bench_async", dict(BODY))
    assert traced.commits == 1
    assert traced.run.response["body"] == {"total": 25.0, "found": 1, "plan": "pro"}


def test_a_sync_caller_is_answered_before_the_steps_after_return_response(workspace):
    """return_response commits the answer at once: the caller is woken while the run still runs."""
    bundle_import(document={"format": 1, "workflows": [{"format": 1, "name": "bench_answer_first", "steps": [
        {"key": "answer", "action": "return_response", "config": {"status": 201, "body": {"ok": True}}},
        {"key": "later", "action": "set_values", "config": {"values": {"n": 1}}},
    ]}]})
    seen = []

    def answered(sender, run, **kwargs):
        seen.append(WorkflowRun.objects.values_list("status", "response").get(id=run.id))

    run_answered.connect(answered, dispatch_uid="test_structure.answered")
    try:
        traced = _Traced("bench_answer_first", {})
    finally:
        run_answered.disconnect(dispatch_uid="test_structure.answered")
    assert [(status, response["status"]) for status, response in seen] == [("running", 201)]
    assert traced.commits == 2
