"""The benchmark's workspace, written through Engine Room's own services: data types, records, workflows, a token."""
import time

from django.db import OperationalError, connection, transaction

CUSTOMERS = 100
ITEMS = 10_000

# Three typed parameters, as a webhook sender posts them.
PARAMETERS = [
    {"name": "email", "type": "email", "required": True},
    {"name": "amount", "type": "number", "required": True},
    {"name": "vip", "type": "boolean", "required": False, "default": False},
]
BODY = {"email": "customer7@example.com", "amount": 12.5, "vip": True}

# set_values → find_records → return_response: the three-step workflow of issue 8.
THREE_STEPS = [
    {"key": "order", "action": "set_values",
     "config": {"values": {"total": "{{ params.amount * 2 }}", "label": "Order for {{ params.email }}"}}},
    {"key": "customer", "action": "find_records",
     "config": {"type": "bench_customer", "filter": {"email": "{{ params.email }}"}, "limit": 1}},
    {"key": "answer", "action": "return_response",
     "config": {"status": 200, "body": {"total": "{{ steps.order.total }}", "found": "{{ steps.customer.count }}",
                                        "plan": "{{ steps.customer.records[0].plan }}"}}},
]


def _workflow(name: str, **fields) -> dict:
    return {"format": 1, "name": name, "auth": "token", **fields}


BUNDLE = {
    "format": 1,
    "data_types": [
        {"name": "bench_customer", "fields": [
            {"name": "email", "type": "email"}, {"name": "name", "type": "text"}, {"name": "plan", "type": "text"},
        ]},
        {"name": "bench_item", "fields": [{"name": "n", "type": "integer"}, {"name": "score", "type": "integer"}]},
    ],
    "workflows": [
        _workflow("bench_async", response="async", parameters=PARAMETERS, steps=THREE_STEPS),
        _workflow("bench_sync", response="sync", parameters=PARAMETERS, steps=THREE_STEPS),
        # One list item: compute, then write the item back (Bubble's "process each thing").
        _workflow("bench_item", parameters=[{"name": "item", "type": "record:bench_item", "required": True}], steps=[
            {"key": "calc", "action": "set_values", "config": {"values": {"score": "{{ params.item.score + 1 }}"}}},
            {"key": "save", "action": "update_record", "config": {
                "type": "bench_item", "id": "{{ params.item.id }}", "fields": {"score": "{{ steps.calc.score }}"}}},
        ]),
        _workflow("bench_list", timeout_seconds=600, parameters=[{"name": "limit", "type": "integer", "default": ITEMS}],
                  steps=[
            {"key": "items", "action": "find_records",
             "config": {"type": "bench_item", "order_by": "n", "limit": "{{ params.limit }}"}},
            {"key": "schedule", "action": "schedule_workflow_on_list",
             "config": {"workflow": "bench_item", "list": "{{ steps.items.records }}", "item_param": "item"}},
        ]),
        # 100,000 items a day apart: only the first comes due during the benchmark.
        _workflow("bench_big_list", timeout_seconds=600,
                  parameters=[{"name": "count", "type": "integer", "default": 100_000}], steps=[
            {"key": "schedule", "action": "schedule_workflow_on_list",
             "config": {"workflow": "bench_tick", "list": "{{ range(params.count) | list }}", "item_param": "n",
                        "interval_seconds": 86400}},
        ]),
        # One and three plain steps: the engine's own queries per step are the difference.
        _workflow("bench_steps1", parameters=[{"name": "n", "type": "integer", "required": False}], steps=[
            {"key": "s1", "action": "set_values", "config": {"values": {"n": "{{ params.n }}"}}},
        ]),
        _workflow("bench_steps3", parameters=[{"name": "n", "type": "integer", "required": False}], steps=[
            {"key": f"s{i}", "action": "set_values", "config": {"values": {"n": "{{ params.n }}"}}} for i in (1, 2, 3)
        ]),
        # The target of one-off and recurring schedules: one step.
        _workflow("bench_tick", parameters=[{"name": "n", "type": "integer", "required": False}], steps=[
            {"key": "at", "action": "set_values", "config": {"values": {"n": "{{ params.n }}", "at": "at {{ now }}"}}},
        ]),
    ],
}


def seed() -> str:
    """Import the bundle, write the records and make an admin token; returns the token's value."""
    from api_endpoints.services import token_create
    from datastore.models import DataType, Record
    from datastore.services import record_create
    from workflows.services import bundle_import

    bundle_import(document=BUNDLE)
    customers = DataType.objects.get(name="bench_customer")
    for index in range(CUSTOMERS):
        plan = "pro" if index % 3 == 0 else "free"
        record_create(data_type=customers, fields={"email": f"customer{index}@example.com",
                                                   "name": f"Customer {index}", "plan": plan})
    # Items are fixture data, not a measured write: inserted in bulk rather than one service call each.
    items = DataType.objects.get(name="bench_item")
    Record.objects.bulk_create([Record(data_type=items, data={"n": n, "score": 0}) for n in range(ITEMS)],
                               batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return token_create(name="bench").value


def workflow(name: str):
    from workflows.models import Workflow

    return Workflow.objects.select_related("live_version").get(name=name)


def checkpoint() -> None:
    """Write PostgreSQL's dirty pages out now (CHECKPOINT), as pgbench does before it measures: the next
    timed checkpoint is then checkpoint_timeout (5 min) away, not in the middle of a figure, where its
    writes and the full-page images that follow it would weigh on whichever side it fell on (one forced by
    max_wal_size still can come sooner)."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def reset_runs() -> None:
    """Forget every run, step, schedule and batch, so that each figure starts from the same tables."""
    from api_endpoints.models import IdempotencyKey
    from logs.models import StepRun, WorkflowRun
    from scheduler.models import Batch, RecurringEvent, ScheduledRun

    tables = [m._meta.db_table for m in (StepRun, ScheduledRun, Batch, RecurringEvent, IdempotencyKey, WorkflowRun)]
    for attempt in range(20):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # Workers may still be finishing runs of the last figure: wait for them, briefly.
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
            break
        except OperationalError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    # Recurring events took their PeriodicTasks with them; only Engine Room's own beat entries stay.
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    PeriodicTask.objects.filter(name__startswith="engine-room recurring event").delete()
    PeriodicTasks.update_changed()
    checkpoint()


def enqueue_runs(count: int, *, queues: list[str], chunk: int = 500) -> None:
    """`count` queued runs of bench_async, as the dispatcher writes them (runs_enqueue_many: one INSERT per
    chunk, each run's message sent once it commits); the queues take turns."""
    from logs.models import RunTrigger
    from workflows.services.runs import runs_enqueue_many

    target = workflow("bench_async")
    params = {"email": BODY["email"], "amount": BODY["amount"], "vip": BODY["vip"]}
    for start in range(0, count, chunk):
        with transaction.atomic():
            runs_enqueue_many(specs=[
                {"workflow": target, "params": dict(params), "trigger": RunTrigger.MANUAL,
                 "queue": queues[index % len(queues)], "caller": "bench"}
                for index in range(start, min(start + chunk, count))
            ])
