"""Drill: the app's PostgreSQL connections terminated again and again during a stream of calls.

A chaos thread runs pg_terminate_backend on every backend of the web and worker processes (chosen
by application_name, in the test database only — never the test harness's own connection). Each
call either succeeds or fails cleanly with 503 and Retry-After; the client retries a 503 with the
same Idempotency-Key, as a webhook sender does. What must hold: no other error, exactly one run per
call, no half-written run (every run has its idempotency key row, which commits in the same
transaction), and every run finishes with all its steps.
"""
import threading
import time
from collections import Counter

import pytest
import requests
from django.db import connection

from api_endpoints.models import IdempotencyKey
from api_endpoints.services import token_create
from logs.models import WorkflowRun
from tests.reliability.conftest import size
from tests.reliability.drills import (
    FAST,
    full_logs,
    marking_workflow,
    repeated_steps,
    sweeper_resent,
    unfinished_steps,
    wait_for_runs,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

APP_CONNECTIONS = ("engine_room_test_web", "engine_room_test_worker")
CLIENTS = 4


def terminate_app_backends() -> int:
    """pg_terminate_backend for the app's processes' connections to this test database; how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = ANY(%s) AND pid <> pg_backend_pid()",
            [list(APP_CONNECTIONS)],
        )
        return cursor.fetchone()[0]


def test_postgres_connections_dropped_mid_stream_fail_cleanly_or_succeed(processes, web_server, drill_table):
    if connection.vendor != "postgresql":
        pytest.skip("the drill terminates PostgreSQL backends")
    calls = size(200, 1000)
    table = drill_table("postgres backends terminated")
    marking_workflow("pgdrill", steps=2)
    token = token_create(name="drill").value
    processes.worker(concurrency=2, env=FAST)
    processes.beat(env=FAST)
    web = web_server(FAST)

    answers: Counter = Counter()
    missing_retry_after: list = []
    outcome: dict[int, str | None] = {}
    lock = threading.Lock()
    pending = list(range(calls))

    def client():
        session = requests.Session()
        while True:
            with lock:
                if not pending:
                    return
                n = pending.pop()
            for _ in range(40):
                try:
                    response = session.post(f"{web.url}/api/wf/pgdrill", json={"n": n}, timeout=60, headers={
                        "Authorization": f"Bearer {token}", "Idempotency-Key": f"call-{n}"})
                    status = response.status_code
                except requests.RequestException:
                    status, response = 0, None
                with lock:
                    answers[status] += 1
                    if status == 503 and not response.headers.get("Retry-After"):
                        missing_retry_after.append(n)
                if 200 <= status < 300:
                    outcome[n] = response.json()["run_id"]
                    break
                # A webhook sender retries later; the drill does not wait Retry-After's 5 s.
                time.sleep(0.3)

    stop = threading.Event()
    terminated = []

    def chaos():
        while not stop.wait(0.7):
            terminated.append(terminate_app_backends())

    workers = [threading.Thread(target=client) for _ in range(CLIENTS)]
    chaos_thread = threading.Thread(target=chaos)
    chaos_thread.start()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=900)
    # The runs go on being processed under fire for a while, then the database is left alone.
    time.sleep(3)
    stop.set()
    chaos_thread.join()

    accepted = {run_id for run_id in outcome.values() if run_id}
    done = wait_for_runs(accepted, timeout=240)
    runs = list(WorkflowRun.objects.filter(workflow_name="pgdrill").values_list("id", "idempotency_key", "status"))
    per_key = Counter(key for _, key, _ in runs)
    keyed = set(IdempotencyKey.objects.filter(workflow__name="pgdrill").values_list("run_id", flat=True))
    half_written = [run_id for run_id, _, _ in runs if run_id not in keyed]
    statuses = Counter(status for _, _, status in runs)
    unexpected = {status: n for status, n in answers.items() if not (200 <= status < 300 or status == 503)}

    table.accepted = len(accepted)
    table.finished = done
    table.lost = (calls - len(outcome)) + (len(accepted) - done) + unfinished_steps(accepted, 2)
    table.duplicated = sum(n - 1 for n in per_key.values() if n > 1) + repeated_steps("pgdrill") \
        + sum(1 for run_id, _, _ in runs if str(run_id) not in accepted)
    table.notes.update(answers_2xx=sum(n for s, n in answers.items() if 200 <= s < 300), answers_503=answers[503],
                       other=sum(unexpected.values()), backends_killed=sum(terminated),
                       half_written=len(half_written), swept=sweeper_resent(full_logs(processes)))

    context = f"{processes.logs()}\n--- web\n{web.logs()}"
    assert sum(terminated) > 0, "the chaos thread terminated nothing"
    assert not unexpected, (unexpected, context)
    assert not missing_retry_after, missing_retry_after[:5]
    assert not half_written, half_written[:5]
    assert table.lost == 0, (statuses, context)
    assert table.duplicated == 0, context
    # A dropped connection is the infrastructure's failure, not the workflow's: no run may fail of it.
    failures = list(WorkflowRun.objects.filter(workflow_name="pgdrill", status="failed").values_list("error", flat=True))
    assert statuses == {"succeeded": len(accepted)}, (statuses, failures[:5])
