"""What the drills share: a marking workflow, the counts of a stream of runs, and waiting for them."""
import re
import time
from collections import Counter

from django.db import transaction
from django.db.models import Count

from datastore.models import DataType, Record
from datastore.services import data_type_create
from logs.models import FINISHED_STATUSES, StepRun, WorkflowRun
from workflows.services import run_enqueue, workflow_create, workflow_publish

# Short ticks for the real processes, so that recovery shows within a drill: a dead worker's lease
# expires after 3 s, the sweeper runs every second and resends a run queued for 5 s.
FAST = {
    "ENGINE_ROOM_LEASE_SECONDS": "3",
    "ENGINE_ROOM_SWEEP_SECONDS": "1",
    "ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS": "5",
    "ENGINE_ROOM_DISPATCH_SECONDS": "1",
    "ENGINE_ROOM_HEARTBEAT_SECONDS": "2",
    # One token sends the whole stream: the per-token limit (1,200/min) would answer the large drills 429.
    "ENGINE_ROOM_RATE_PER_TOKEN": "1000000/min",
}


def marking_workflow(name: str, *, steps: int = 1, extra_steps=(), **settings):
    """A published workflow whose steps each write a `mark` record naming the run and the step.

    A step that commits twice leaves two marks: counting them is how a drill sees a repeated step.
    """
    if not DataType.objects.filter(name="mark").exists():
        data_type_create(name="mark", fields=[{"name": "run", "type": "text"}, {"name": "step", "type": "integer"}])
    marks = [
        {"key": f"mark_{index}", "action": "create_record",
         "config": {"type": "mark", "fields": {"run": "{{ run.id }}", "step": index}}}
        for index in range(1, steps + 1)
    ]
    workflow = workflow_create(definition={
        "format": 1, "name": name, "parameters": [{"name": "n", "type": "integer"}],
        "steps": [*marks, *extra_steps], **settings,
    })
    workflow_publish(workflow=workflow)
    return workflow


def enqueue_many(workflow, count: int) -> list[str]:
    """count queued runs written in one transaction (their messages go out on commit)."""
    with transaction.atomic():
        return [str(run_enqueue(workflow=workflow, params={"n": n}, trigger="manual").id) for n in range(count)]


def finished_count(run_ids) -> int:
    done = 0
    ids = list(run_ids)
    for start in range(0, len(ids), 1000):
        done += WorkflowRun.objects.filter(id__in=ids[start:start + 1000], status__in=FINISHED_STATUSES).count()
    return done


def wait_for_runs(run_ids, *, timeout: float, on_progress=None) -> int:
    """Wait until every run is finished or the time is up; returns how many finished."""
    deadline = time.monotonic() + timeout
    while True:
        done = finished_count(run_ids)
        if on_progress:
            on_progress(done)
        if done >= len(run_ids) or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def repeated_steps(workflow_name: str) -> int:
    """Committed steps that happened more than once: extra marks, extra succeeded step rows."""
    marks = Counter(
        (record.data["run"], record.data["step"]) for record in Record.objects.filter(data_type__name="mark")
        .only("data")
    )
    extra_marks = sum(count - 1 for count in marks.values() if count > 1)
    extra_steps = sum(
        row["n"] - 1 for row in StepRun.objects.filter(run__workflow_name=workflow_name, status="succeeded")
        .values("run_id", "index").annotate(n=Count("id")).order_by() if row["n"] > 1
    )
    return extra_marks + extra_steps


def unfinished_steps(run_ids, steps: int) -> int:
    """Finished-succeeded runs that lack one of their marks (a step lost rather than repeated)."""
    marks = Counter(record.data["run"] for record in Record.objects.filter(data_type__name="mark").only("data"))
    succeeded = WorkflowRun.objects.filter(id__in=list(run_ids), status="succeeded").values_list("id", flat=True)
    return sum(1 for run_id in succeeded if marks[str(run_id)] < steps)


def sweeper_resent(logs: str) -> int:
    """How many runs the sweeper resent, read from the workers' logs ("Sweeper resent E expired and S stale")."""
    return sum(int(expired) + int(stale)
               for expired, stale in re.findall(r"Sweeper resent (\d+) expired and (\d+) stale", logs))


def full_logs(processes) -> str:
    """Every line the drill's worker and beat processes wrote (Processes.logs() keeps only the tails)."""
    return "\n".join(log.read_text() for _, log in processes.running)
