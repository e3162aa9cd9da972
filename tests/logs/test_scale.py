"""With 100,000 runs in PostgreSQL, run-list pages take a fixed number of queries, each an index scan."""
import re
from urllib.parse import unquote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from logs.models import WorkflowRun

from .conftest import SET_VALUES

pytestmark = pytest.mark.django_db

RUNS = 100_000
PAGES = {
    "first page": {},
    "one workflow's failures": {"workflow": "wf_2", "status": "failed"},
    "webhook runs": {"trigger": "webhook"},
    "one version": {"workflow": "wf_3", "version": "1"},
    "last 24 hours": {"period": "24h"},
    "running now": {"status": "running"},
}


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("the 100k-run query plans are PostgreSQL's")


@pytest.fixture
def workflows(postgres, make_workflow):
    return [make_workflow(f"wf_{index}", steps=[SET_VALUES]) for index in range(5)]


def insert_runs(workflows, count: int) -> None:
    """`count` finished and in-flight runs over the last 14 days, in one INSERT … SELECT (about a second)."""
    ids = [workflow.id for workflow in workflows]
    versions = [workflow.live_version_id for workflow in workflows]
    names = [workflow.name for workflow in workflows]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO logs_workflowrun (
                id, workflow_id, workflow_name, version_id, status, trigger, queue, params, caller, error_code,
                error, current_step, attempt, waits_for_slot, claim, cancel_requested, dry_run, depth,
                chain_length, idempotency_key, wu, created, started_at, finished_at, duration_ms)
            SELECT gen_random_uuid(), (%(ids)s::bigint[])[1 + g %% 5], (%(names)s::text[])[1 + g %% 5],
                   (%(versions)s::bigint[])[1 + g %% 5],
                   CASE WHEN g %% 100 < 85 THEN 'succeeded' WHEN g %% 100 < 95 THEN 'failed'
                        WHEN g %% 100 < 97 THEN 'skipped' WHEN g %% 100 < 98 THEN 'cancelled'
                        WHEN g %% 1000 < 985 THEN 'terminated' WHEN g %% 1000 < 995 THEN 'queued' ELSE 'running' END,
                   (ARRAY['webhook','schedule','recurring','record','manual','workflow','list'])[1 + g %% 7],
                   'default', jsonb_build_object('customer', 'cus_' || g, 'amount', g %% 500), '203.0.113.' || g %% 250,
                   '', '', 1, 1, false, 1, false, false, 0, 0, '', 0.25,
                   now() - (g * interval '12 seconds'), now() - (g * interval '12 seconds'),
                   now() - (g * interval '12 seconds') + interval '150 milliseconds', 150
            FROM generate_series(1, %(count)s) AS g
            """,
            {"ids": ids, "names": names, "versions": versions, "count": count},
        )
        # Failed runs carry their error, as the engine writes it.
        cursor.execute("UPDATE logs_workflowrun SET error_code = 'step_failed', "
                       "error = 'Step 1 ''charge'' failed: card declined' WHERE status = 'failed'")
        # What autovacuum does on a live table: without it a rolled-back earlier test's dead rows and an
        # empty visibility map make the planner's choices depend on the order tests ran in.
        cursor.execute("VACUUM ANALYZE logs_workflowrun" if not connection.in_atomic_block else "ANALYZE logs_workflowrun")


def page_queries(client, query: dict) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("logs-page"), query)
    assert response.status_code == 200
    return [item["sql"] for item in queries.captured_queries]


def older_page(client, query: dict) -> dict:
    html = client.get(reverse("logs-page"), query).content.decode()
    cursor = re.search(r'before=([^"&]+)">Older', html).group(1)
    return {**query, "before": unquote(cursor)}


def test_pages_take_the_same_few_queries_with_100k_runs_as_with_200(editor_client, workflows):
    insert_runs(workflows, 200)
    small = {name: len(page_queries(editor_client, query)) for name, query in PAGES.items()}
    insert_runs(workflows, RUNS)
    assert WorkflowRun.objects.count() == RUNS + 200
    big = {name: len(page_queries(editor_client, query)) for name, query in PAGES.items()}
    second = len(page_queries(editor_client, older_page(editor_client, PAGES["one workflow's failures"])))
    search = len(page_queries(editor_client, {"q": "cus_4242"}))

    assert big == small
    # Session and user, the workflow names, the resolved filter, the page, 7 capped status counts, on_failure links.
    assert max(big.values()) <= 14 and second <= 14 and search <= 14, (big, second, search)


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_every_run_list_query_is_an_index_scan_after_vacuum(editor_client, workflows):
    insert_runs(workflows, RUNS)
    for name, query in [*PAGES.items(), ("second page", older_page(editor_client, PAGES["one workflow's failures"]))]:
        for sql in page_queries(editor_client, query):
            if "logs_workflowrun" not in sql:
                continue
            plan = explain(sql)
            assert "Seq Scan on logs_workflowrun" not in plan, f"{name}: {sql}\n{plan}"
            # A plain, index-only or bitmap index scan: each reads only the matching part of an index.
            assert re.search(r"Index (Only )?Scan( Backward)? using \w+ on logs_workflowrun|Bitmap Index Scan on \w+",
                             plan), f"{name}\n{plan}"
    # The filtered page itself walks the composite index newest first and stops after one page.
    page_sql = next(sql for sql in page_queries(editor_client, PAGES["one workflow's failures"])
                    if "logs_workflowrun" in sql and "LIMIT 51" in sql)
    assert "run_workflow_status_created" in explain(page_sql)
    first_sql = next(sql for sql in page_queries(editor_client, {}) if "logs_workflowrun" in sql and "LIMIT 51" in sql)
    assert "run_created" in explain(first_sql)
