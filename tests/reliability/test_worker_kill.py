"""Drill: the worker SIGKILLed twice during a stream of runs.

Each run commits three marking steps around a slow outbound call. Killing the worker's whole
process group mid-stream (twice) must lose no run — leases expire and the sweeper hands the runs to
the next worker — and repeat no committed step: each step's writes and its StepRun commit together,
and the claim number fences off a worker that lost its lease. The HTTP step in flight at a kill is
at-least-once (DESIGN.md) and is reported, not forbidden.
"""
import threading
import time
from collections import Counter

import pytest
from werkzeug import Response

from logs.models import WorkflowRun
from tests.reliability.conftest import size
from tests.reliability.drills import (
    FAST,
    enqueue_many,
    full_logs,
    marking_workflow,
    repeated_steps,
    sweeper_resent,
    unfinished_steps,
    wait_for_runs,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_worker_killed_twice_loses_no_run_and_repeats_no_step(processes, httpserver, drill_table):
    count = size(120, 1000)
    table = drill_table("worker SIGKILL x2 mid-stream")
    calls: Counter = Counter()
    lock = threading.Lock()

    def slow(request):
        with lock:
            calls[request.headers.get("Idempotency-Key")] += 1
        time.sleep(0.05)
        return Response('{"ok": true}', content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    workflow = marking_workflow("crashy", steps=2, extra_steps=[
        {"key": "call", "action": "http_request", "config": {"url": httpserver.url_for("/slow"), "timeout_seconds": 10}},
        {"key": "mark_3", "action": "create_record", "config": {"type": "mark", "fields": {"run": "{{ run.id }}",
                                                                                        "step": 3}}},
    ])
    processes.beat(env=FAST)
    worker = processes.worker(concurrency=2, env=FAST, name="first")
    run_ids = enqueue_many(workflow, count)
    kills = []
    for fraction, name in ((1 / 3, "second"), (2 / 3, "third")):
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = WorkflowRun.objects.filter(id__in=run_ids, status="succeeded").count()
            if done >= count * fraction:
                break
            time.sleep(0.2)
        in_flight = WorkflowRun.objects.filter(id__in=run_ids, status="running").count()
        processes.kill(worker)
        kills.append(in_flight)
        worker = processes.worker(concurrency=2, env=FAST, name=name)
    done = wait_for_runs(run_ids, timeout=300)

    statuses = Counter(WorkflowRun.objects.filter(id__in=run_ids).values_list("status", flat=True))
    table.accepted = count
    table.finished = done
    table.lost = count - done + unfinished_steps(run_ids, 3)
    table.duplicated = repeated_steps("crashy")
    table.notes.update(running_at_kills="+".join(map(str, kills)), http_resent=sum(c - 1 for c in calls.values()),
                       reclaimed=WorkflowRun.objects.filter(id__in=run_ids, claim__gt=1).count(),
                       swept=sweeper_resent(full_logs(processes)))

    assert table.lost == 0, (statuses, processes.logs())
    assert table.duplicated == 0, processes.logs()
    assert statuses == {"succeeded": count}, processes.logs()
    # Every outbound call carried the same key on every attempt: a receiver could deduplicate.
    assert set(calls) == {f"{run_id}:2" for run_id in run_ids}
