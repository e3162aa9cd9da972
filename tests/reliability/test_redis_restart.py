"""Drill: Redis (broker and cache) killed and restarted in the middle of a stream of webhook calls.

The drill's own redis-server runs without persistence, so the restart loses every queued message
and every cached lookup. What must hold: every call answered 2xx has exactly one run and every such
run finishes (the run row is committed before its message is sent; the sweeper resends runs left
queued), and a redelivery with the same Idempotency-Key — before, during or after the outage —
answers with the first run instead of starting another.
"""
import queue
import threading
import time
from collections import Counter

import pytest
import requests

from api_endpoints.services import token_create
from logs.models import WorkflowRun
from tests.integration.conftest import wait_until
from tests.reliability.conftest import size
from tests.reliability.drills import (
    FAST,
    finished_count,
    full_logs,
    marking_workflow,
    repeated_steps,
    sweeper_resent,
    wait_for_runs,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CLIENTS = 6
OUTAGE_SECONDS = 3


def test_redis_restart_mid_stream_loses_and_doubles_nothing(processes, redis_server, web_server, drill_table):
    calls = size(300, 2000)
    table = drill_table("redis restart mid-stream")
    marking_workflow("ingest")
    token = token_create(name="drill").value
    env = {**FAST, "REDIS_URL": redis_server.url, "CELERY_BROKER_URL": redis_server.url}
    processes.worker(concurrency=2, env=env)
    processes.beat(env=env)
    web = web_server(env)

    # Every 10th call carries an Idempotency-Key and is delivered again a quarter of the stream
    # later, so that redeliveries land before, during and after the outage.
    sends = [(n, f"drill-{n}" if n % 10 == 0 else None) for n in range(calls)]
    for n in range(0, calls, 10):
        sends.insert(min(len(sends), n + calls // 4), (n, f"drill-{n}"))
    work: queue.Queue = queue.Queue()
    for item in sends:
        work.put(item)
    answers: list[tuple[int, str | None, int, str | None, bool]] = []
    lock = threading.Lock()

    def client():
        session = requests.Session()
        while True:
            try:
                n, key = work.get_nowait()
            except queue.Empty:
                return
            headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}
            try:
                response = session.post(f"{web.url}/api/wf/ingest", json={"n": n}, headers=headers, timeout=60)
                status, body = response.status_code, response.json() if response.content else {}
                replayed = response.headers.get("Idempotent-Replayed") == "true"
            except (requests.RequestException, ValueError) as exc:
                status, body, replayed = 0, {"error": repr(exc)}, False
            with lock:
                answers.append((n, key, status, body.get("run_id"), replayed))

    restarted = {}

    def chaos():
        while len(answers) < calls // 3:
            time.sleep(0.05)
        restarted["at_answer"] = len(answers)
        redis_server.kill()
        time.sleep(OUTAGE_SECONDS / 2)
        health = requests.get(f"{web.url}/healthz", timeout=30)
        restarted["health_during_outage"] = (health.status_code, health.json()["checks"]["redis"])
        time.sleep(OUTAGE_SECONDS / 2)
        restarted["answers_during_outage"] = len(answers) - restarted["at_answer"]
        redis_server.start()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)] + [threading.Thread(target=chaos)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    stream_seconds = time.monotonic() - started

    accepted = {run_id for _, _, status, run_id, _ in answers if 200 <= status < 300 and run_id}
    refused = [(n, status) for n, _, status, _, _ in answers if not 200 <= status < 300]
    done = wait_for_runs(accepted, timeout=240)

    runs = list(WorkflowRun.objects.filter(workflow_name="ingest").values_list("id", "status", "idempotency_key"))
    orphans = [run_id for run_id, _, _ in runs if str(run_id) not in accepted]
    per_key = Counter(key for _, _, key in runs if key)
    first_by_key = {}
    replay_mismatch = 0
    for _n, key, status, run_id, _replayed in answers:
        if key and 200 <= status < 300:
            if first_by_key.setdefault(key, run_id) != run_id:
                replay_mismatch += 1
    table.accepted = len(accepted)
    table.finished = done
    table.lost = len(accepted) - done
    table.duplicated = len(orphans) + sum(c - 1 for c in per_key.values() if c > 1) + replay_mismatch \
        + repeated_steps("ingest")
    table.notes.update(calls=len(answers), refused=len(refused), redeliveries=sum(1 for a in answers if a[4]),
                       during_outage=restarted.get("answers_during_outage"), stream_s=round(stream_seconds, 1),
                       enqueue_failed=web.logs(full=True).count("Could not enqueue run"),
                       swept=sweeper_resent(full_logs(processes)))

    context = f"{processes.logs()}\n--- web\n{web.logs()}"
    assert restarted, "the stream ended before Redis was restarted"
    assert not refused, (refused[:10], context)
    assert table.lost == 0, context
    assert table.duplicated == 0, (orphans[:5], per_key.most_common(3), replay_mismatch, context)
    assert finished_count(accepted) == len(accepted)
    assert set(WorkflowRun.objects.filter(workflow_name="ingest").values_list("status", flat=True)) == {"succeeded"}
    # /healthz saw the outage, and sees beat and the worker back (their heartbeats go through Redis).
    assert restarted["health_during_outage"] == (503, "fail")
    wait_until(lambda: requests.get(f"{web.url}/healthz", timeout=30).status_code == 200, timeout=60,
               message="/healthz to be green again after the restart")
