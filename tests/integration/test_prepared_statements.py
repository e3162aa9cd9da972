"""On PostgreSQL a worker's repeated statements are prepared once per connection (bench O22)."""
import os
import re
import subprocess
import sys

import pytest
from django.db import connection, connections, transaction

from logs.models import WorkflowRun
from tests.test_structure import workspace  # noqa: F401  (the benchmark's bundle, as a fixture)
from workflows import engine
from workflows.models import Workflow
from workflows.services import run_enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_runs_claim_and_commit_are_prepared_after_their_second_use(workspace):  # noqa: F811
    """Parsing and planning the claim and the commit once per connection is what O22 saves; runs stay exact."""
    workflow = Workflow.objects.select_related("live_version").get(name="bench_steps3")
    runs = []
    for n in range(3):
        with transaction.atomic():
            run = run_enqueue(workflow=workflow, params={"n": n}, trigger="manual", dispatch_on_commit=False)
        engine.run_execute(run.id)
        run.refresh_from_db()
        runs.append(run)
    assert [run.status for run in runs] == ["succeeded"] * 3
    assert [run.steps.count() for run in runs] == [3, 3, 3]
    prepared = _prepared()
    assert any(sql.startswith('UPDATE "logs_workflowrun"') and "RETURNING" in sql for sql in prepared), prepared
    assert any(sql.startswith("WITH") and "logs_steprun" in sql for sql in prepared), prepared


def test_prepared_statements_can_be_turned_off_for_a_transaction_mode_pooler():
    """ENGINE_ROOM_DB_PREPARED=false goes back to client-side binding, which any pooler accepts."""
    code = ("import django; django.setup(); from django.conf import settings; "
            "o = settings.DATABASES['default']['OPTIONS']; "
            "print(o.get('server_side_binding'), o.get('prepare_threshold'))")
    inherited = {name: value for name, value in os.environ.items() if name != "ENGINE_ROOM_DB_PREPARED"}
    env = {**inherited, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    off = subprocess.run([sys.executable, "-c", code], env={**env, "ENGINE_ROOM_DB_PREPARED": "false"},
                         capture_output=True, text=True, check=True)
    assert on.stdout.split() == ["True", "2"]
    assert off.stdout.split() == ["None", "None"]


def _plans(fragment: str) -> tuple[int, int]:
    """(generic, custom) plans PostgreSQL made for this connection's one prepared statement holding `fragment`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                       [f"%{fragment}%"])
        (found,) = cursor.fetchall()
        return found


def test_a_search_of_one_shape_is_planned_once_for_all_its_values(workspace):  # noqa: F811
    """A find_records search keeps one plan whatever its values: with the type's id a parameter, PostgreSQL
    judged its plan for any value worse than each value's own and planned every search again (bench O40)."""
    from datastore.models import DataType, Record
    from datastore.selectors import records_search
    from datastore.services import record_create

    customers = DataType.objects.get(name="bench_customer")
    for n in range(30):
        record_create(data_type=customers, fields={"email": f"c{n}@example.com", "name": f"C{n}", "plan": "free"})
    # Records of another type, as in any workspace, and the statistics the planner judges by.
    items = DataType.objects.get(name="bench_item")
    Record.objects.bulk_create(Record(data_type=items, data={"n": n, "score": 0}) for n in range(5000))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE datastore_record")
    found = [records_search(type_name="bench_customer", filter={"email": f"c{n % 30}@example.com"}, order_by=None,
                            limit=1) for n in range(20)]
    assert [(rows[0].data["name"], count) for rows, count in found] == [(f"C{n}", 1) for n in range(20)]
    generic, custom = _plans(f'"datastore_record"."data_type_id" = {customers.pk} ')
    # Once prepared (psycopg, at its third use), PostgreSQL plans five executions for their own values, then
    # uses the one plan if it looks as good: every later search.
    assert custom <= 5 and generic >= 10


def test_the_statements_that_claim_and_end_a_run_find_it_by_its_id():
    """A prepared statement's one plan for all values never searches the status index for a run it knows
    by id: on a small table that index looked as cheap as the key, and a connection that chose it kept it as
    the table grew, each end then reading every "running" entry of the index, live or dead (bench O41)."""
    db = connections["default"]
    held = engine._held(WorkflowRun(claim=1)).order_by().query.sql_with_params()[0]
    statements = {
        "claim": engine._claim_statement(db)[0],
        "end_and_claim": engine._progress_statement(db, ("status", "finished_at"), True, (), True),
        "held": held,  # the lease's renewal, a retry's wait, a release
    }
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        try:
            for name, sql in statements.items():
                count = sql.count("%s")
                cursor.execute(f"PREPARE plan_{name} AS {sql % tuple(f'${n}' for n in range(1, count + 1))}")
                cursor.execute(f"EXPLAIN EXECUTE plan_{name}({', '.join(['NULL'] * count)})")
                plan = "\n".join(row[0] for row in cursor.fetchall())
                cursor.execute(f"DEALLOCATE plan_{name}")
                # No index is searched by status (the key, or a scan of an empty table, finds the run).
                assert not re.search(r"Cond: .*status", plan) and "run_status_created" not in plan, plan
        finally:
            cursor.execute("RESET plan_cache_mode")
