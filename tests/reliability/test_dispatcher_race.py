"""Drill: two dispatcher processes racing over the same due scheduled runs.

Both start at the same instant and claim small batches (FOR UPDATE SKIP LOCKED on PostgreSQL, a
claim token on SQLite) until nothing is due. Every scheduled run must become exactly one run,
dispatched by exactly one of them, and every run must finish.
"""
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from logs.models import WorkflowRun
from scheduler.models import ScheduledRun
from tests.reliability.conftest import ROOT, size
from tests.reliability.drills import FAST, marking_workflow, repeated_steps, wait_for_runs

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DISPATCHER = """
import os, pathlib, time
import django
django.setup()
from scheduler.services import scheduled_runs_dispatch
go = pathlib.Path(os.environ["DRILL_GO"])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
total = 0
while True:
    dispatched = scheduled_runs_dispatch(batch_size=int(os.environ["DRILL_BATCH"]), budget_seconds=120)
    total += dispatched
    if not dispatched:
        break
print(f"dispatched {total}", flush=True)
"""


def test_two_dispatchers_start_each_scheduled_run_once(processes, tmp_path, drill_table):
    count = size(400, 5000)
    table = drill_table("two dispatchers racing")
    workflow = marking_workflow("due")
    due = timezone.now() - timedelta(seconds=1)
    ScheduledRun.objects.bulk_create(
        [ScheduledRun(workflow=workflow, workflow_name="due", params={"n": n}, due_at=due) for n in range(count)],
        batch_size=2000,
    )
    processes.worker(concurrency=2, env=FAST)
    go = tmp_path / "go"
    env = {**processes.env, "DRILL_GO": str(go), "DRILL_BATCH": "20",
           "ENGINE_ROOM_DB_APPLICATION_NAME": "engine_room_test_dispatcher"}
    racers = [subprocess.Popen([sys.executable, "-c", DISPATCHER], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for racer in racers:
        line = racer.stdout.readline()
        if line.strip() != "ready":
            go.touch()
            pytest.fail(f"a dispatcher did not start: {line}{racer.communicate(timeout=60)[0]}")
    go.touch()
    outputs = [racer.communicate(timeout=600)[0] for racer in racers]
    by_racer = [int(line.split()[1]) for output in outputs for line in output.splitlines()
                if line.startswith("dispatched ")]

    run_ids = list(ScheduledRun.objects.exclude(run=None).values_list("run_id", flat=True))
    done = wait_for_runs(run_ids, timeout=300)
    per_row = Counter(WorkflowRun.objects.filter(workflow_name="due").values_list("caller", flat=True))
    statuses = Counter(ScheduledRun.objects.values_list("status", flat=True))
    table.accepted = count
    table.finished = done
    table.lost = count - len(run_ids) + (len(run_ids) - done)
    table.duplicated = sum(n - 1 for n in per_row.values() if n > 1) + (sum(per_row.values()) - len(run_ids)) \
        + repeated_steps("due")
    table.notes.update(by_dispatcher="+".join(map(str, by_racer)))

    assert len(by_racer) == 2, outputs
    assert sum(by_racer) == count, outputs
    assert statuses == {"dispatched": count}
    assert table.lost == 0 and table.duplicated == 0, (table, processes.logs())
    # Both really raced: each took part of the rows.
    assert min(by_racer) > 0, by_racer
    assert set(WorkflowRun.objects.filter(workflow_name="due").values_list("status", flat=True)) == {"succeeded"}
