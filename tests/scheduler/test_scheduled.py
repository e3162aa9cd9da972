"""One-off scheduled runs and batches: written durably, dispatched once when due, pausable, cancellable."""
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import ActionError, ParameterError, ValidationError
from datastore.services import data_type_create, record_create
from logs.models import StepRun, WorkflowRun
from scheduler.models import ScheduledRun
from scheduler.services import (
    batch_cancel,
    batch_create,
    batches_recount,
    scheduled_run_create,
    scheduled_runs_cancel,
    scheduled_runs_dispatch,
    scheduled_runs_pause,
    scheduled_runs_resume,
)
from workflows.services import run_enqueue, workflow_publish, workflow_update

pytestmark = pytest.mark.django_db

GREET = {"key": "greet", "action": "set_values", "config": {"values": {"hello": "{{ params.name }}"}}}


@pytest.fixture
def greet(make_workflow):
    return make_workflow("greet", parameters=[{"name": "name", "type": "text", "required": True}], steps=[GREET])


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def test_a_due_scheduled_run_starts_once_and_is_linked_to_its_run(greet, sent):
    scheduled = scheduled_run_create(workflow=greet, params={"name": "Ada"}, due_at=later(-1))
    assert scheduled_runs_dispatch() == 1
    assert scheduled_runs_dispatch() == 0
    scheduled.refresh_from_db()
    run = scheduled.run
    assert scheduled.status == "dispatched" and scheduled.dispatched_at is not None
    assert (run.status, run.trigger, run.params, run.queue) == ("queued", "schedule", {"name": "Ada"}, "default")
    assert WorkflowRun.objects.count() == 1


def test_a_run_not_yet_due_waits(greet):
    scheduled = scheduled_run_create(workflow=greet, params={"name": "Ada"}, due_at=later(60))
    assert scheduled_runs_dispatch() == 0
    assert scheduled_runs_dispatch(now=later(61)) == 1
    scheduled.refresh_from_db()
    assert scheduled.status == "dispatched"


def test_a_run_due_before_the_next_tick_is_sent_ahead_and_held_until_due(
    greet, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """A run due before the dispatcher's next tick goes out now, its task held by Celery until the due
    time (so it starts on time, not up to a tick late); one due later waits for its own tick."""
    settings.ENGINE_ROOM_DISPATCH_AHEAD_SECONDS = 2
    countdowns = {}
    monkeypatch.setattr("workflows.services.runs.dispatch",
                        lambda run_id, queue, countdown=None, timeout_seconds=None: countdowns.update({run_id: countdown}))
    soon = scheduled_run_create(workflow=greet, params={"name": "soon"}, due_at=later(1.5))
    scheduled_run_create(workflow=greet, params={"name": "later"}, due_at=later(30))
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduled_runs_dispatch() == 1
    soon.refresh_from_db()
    assert soon.status == "dispatched" and soon.run.not_before == soon.due_at
    assert 0 < countdowns[soon.run_id] <= 1.5


def test_cancelling_a_run_sent_ahead_stops_it_before_it_starts(greet, sent, drain):
    row = scheduled_run_create(workflow=greet, params={"name": "x"}, due_at=later(0.8))
    assert scheduled_runs_dispatch() == 1
    assert scheduled_runs_cancel(ids=[row.id]) == 1
    drain()
    row.refresh_from_db()
    assert row.status == "cancelled" and row.run.status == "cancelled"
    assert row.run.started_at is None


def test_cancel_leaves_a_run_that_started_and_waits_for_a_retry(greet, sent):
    """A run sent ahead that has since started (and is queued again for a retry's backoff) is not cancelled."""
    row = scheduled_run_create(workflow=greet, params={"name": "x"}, due_at=later(0.8))
    assert scheduled_runs_dispatch() == 1
    row.refresh_from_db()
    WorkflowRun.objects.filter(id=row.run_id).update(started_at=timezone.now(), attempt=2, not_before=later(30))
    assert scheduled_runs_cancel(ids=[row.id]) == 0
    row.refresh_from_db()
    assert row.status == "dispatched" and row.run.status == "queued"


def test_cancelling_a_batch_stops_the_items_sent_ahead(greet, sent):
    batch = batch_create(workflow=greet, items=["a", "b"], item_param="name", interval_seconds=60,
                         start_at=later(0.5))
    assert scheduled_runs_dispatch() == 1  # "a", due before the next tick
    assert batch_cancel(batch=batch) == 2
    assert list(WorkflowRun.objects.values_list("status", flat=True)) == ["cancelled"]
    assert set(ScheduledRun.objects.filter(batch=batch).values_list("status", flat=True)) == {"cancelled"}


def test_it_runs_the_version_live_when_it_starts(greet):
    scheduled = scheduled_run_create(workflow=greet, params={"name": "Ada"}, due_at=later(-1))
    workflow_update(workflow=greet, definition={
        "format": 1, "name": "greet", "parameters": [{"name": "name", "type": "text", "required": True}],
        "steps": [GREET, {"key": "again", "action": "set_values", "config": {"values": {"v": 2}}}],
    })
    v2 = workflow_publish(workflow=greet)
    scheduled_runs_dispatch()
    scheduled.refresh_from_db()
    assert scheduled.run.version_id == v2.id


def test_parameters_are_checked_when_scheduled(greet):
    with pytest.raises(ParameterError) as caught:
        scheduled_run_create(workflow=greet, params={}, due_at=later(60))
    assert caught.value.fields == {"name": "required"}
    assert not ScheduledRun.objects.exists()


def test_parameters_the_live_version_no_longer_accepts_fail_the_run_visibly(greet):
    scheduled = scheduled_run_create(workflow=greet, params={"name": "Ada"}, due_at=later(-1))
    workflow_update(workflow=greet, definition={
        "format": 1, "name": "greet", "parameters": [{"name": "age", "type": "integer", "required": True}],
        "steps": [],
    })
    workflow_publish(workflow=greet)
    scheduled_runs_dispatch()
    scheduled.refresh_from_db()
    assert scheduled.run.status == "failed" and "age: required" in scheduled.run.error


def test_a_disabled_workflow_does_not_start_and_the_row_says_why(greet):
    scheduled = scheduled_run_create(workflow=greet, params={"name": "Ada"}, due_at=later(-1))
    greet.enabled = False
    greet.save()
    scheduled_runs_dispatch()
    scheduled.refresh_from_db()
    assert scheduled.status == "dispatched" and scheduled.run is None and "disabled" in scheduled.error


def test_pause_resume_and_cancel(greet):
    rows = [scheduled_run_create(workflow=greet, params={"name": n}, due_at=later(-1)) for n in "abc"]
    assert scheduled_runs_pause(ids=[rows[0].id, rows[1].id]) == 2
    assert scheduled_runs_cancel(ids=[rows[1].id]) == 1
    assert scheduled_runs_dispatch() == 1  # only c
    assert scheduled_runs_resume(ids=[rows[0].id, rows[1].id]) == 1  # a; b is cancelled for good
    assert scheduled_runs_dispatch() == 1
    statuses = {r.params["name"]: r.status for r in ScheduledRun.objects.all()}
    assert statuses == {"a": "dispatched", "b": "cancelled", "c": "dispatched"}
    assert sorted(r.params["name"] for r in WorkflowRun.objects.all()) == ["a", "c"]
    assert scheduled_runs_cancel(ids=[rows[2].id]) == 0  # started already


def test_a_malformed_id_is_a_validation_error():
    with pytest.raises(ValidationError):
        scheduled_runs_cancel(ids=["not-an-id"])


def test_the_sqlite_claim_path_dispatches_each_row_once(greet, monkeypatch):
    monkeypatch.setattr(connection.features, "has_select_for_update_skip_locked", False)
    for name in "abc":
        scheduled_run_create(workflow=greet, params={"name": name}, due_at=later(-1))
    assert scheduled_runs_dispatch(batch_size=2) == 3
    assert scheduled_runs_dispatch() == 0
    assert WorkflowRun.objects.count() == 3


def test_max_concurrency_keeps_the_excess_pending(make_workflow, drain):
    workflow = make_workflow("limited", steps=[], max_concurrency=2)
    for _ in range(5):
        scheduled_run_create(workflow=workflow, params={}, due_at=later(-1))
    assert scheduled_runs_dispatch() == 2
    assert ScheduledRun.objects.filter(status="pending").count() == 3
    drain()
    assert scheduled_runs_dispatch() == 2
    drain()
    assert scheduled_runs_dispatch() == 1


def test_a_scheduled_run_joins_the_tree_of_the_run_that_scheduled_it(greet):
    parent = run_enqueue(workflow=greet, params={"name": "p"}, trigger="manual", dispatch_on_commit=False)
    WorkflowRun.objects.filter(id=parent.id).update(chain_length=4, depth=2)
    parent.refresh_from_db()
    scheduled = scheduled_run_create(workflow=greet, params={"name": "c"}, due_at=later(-1), parent=parent)
    scheduled_runs_dispatch()
    run = WorkflowRun.objects.get(id=ScheduledRun.objects.get(id=scheduled.id).run_id)
    assert (run.parent_run_id, run.root_run_id, run.chain_length) == (parent.id, parent.id, 5)
    # A scheduling hop is not nesting: depth (MAX_CALL_DEPTH's measure) stays the parent's.
    assert run.depth == 2


def test_the_chain_limit_names_the_chain(greet, settings):
    settings.ENGINE_ROOM_MAX_CHAIN_LENGTH = 4
    parent = run_enqueue(workflow=greet, params={"name": "p"}, trigger="manual", dispatch_on_commit=False)
    WorkflowRun.objects.filter(id=parent.id).update(chain_length=4)
    parent.refresh_from_db()
    with pytest.raises(ActionError, match=r"Chain length 5 exceeds MAX_CHAIN_LENGTH=4: greet → greet") as caught:
        scheduled_run_create(workflow=greet, params={"name": "c"}, due_at=later(1), parent=parent)
    assert caught.value.code == "chain_limit"


# --- Batches ----------------------------------------------------------------------------------


def test_a_list_becomes_one_run_per_item_on_the_bulk_queue(greet, drain):
    batch = batch_create(workflow=greet, items=["a", "b", "c"], item_param="name", interval_seconds=0)
    assert (batch.total, batch.done) == (3, 0)
    assert scheduled_runs_dispatch() == 3
    runs = WorkflowRun.objects.order_by("params__name")
    assert [(r.params, r.trigger, r.queue) for r in runs] == [
        ({"name": n}, "list", "bulk") for n in "abc"
    ]
    drain()
    # Each finished run counts at once (logs.signals.run_finished), no recount needed.
    batch.refresh_from_db()
    assert (batch.done, batch.failed, batch.finished_at is not None) == (3, 0, True)


def test_a_run_is_counted_once_whatever_reports_it(greet, drain):
    from logs.signals import run_finished

    batch = batch_create(workflow=greet, items=["a", "b"], item_param="name", interval_seconds=3600)
    scheduled_runs_dispatch()
    (run,) = drain()
    run_finished.send(sender=WorkflowRun, run=run)  # a repeated signal
    batches_recount()
    batches_recount()
    batch.refresh_from_db()
    assert (batch.done, batch.failed, batch.finished_at) == (1, 0, None)


def test_a_list_item_is_counted_by_the_statement_that_ends_its_run(greet, sent):
    from django.test.utils import CaptureQueriesContext

    from workflows.engine import run_execute

    batch = batch_create(workflow=greet, items=["a"], item_param="name")
    scheduled_runs_dispatch()
    run = WorkflowRun.objects.get()
    with CaptureQueriesContext(connection) as queries:
        run_execute(run.id)
    batch.refresh_from_db()
    assert (batch.done, batch.finished_at is not None) == (1, True)
    counting = [query["sql"] for query in queries if "scheduler_batch" in query["sql"]]
    if connection.vendor == "postgresql":
        # The run's end, its step log and its count: one statement, one commit (bench O28).
        assert len(counting) == 1 and "logs_workflowrun" in counting[0]
    else:
        # Elsewhere run_finished's receiver counts it once the end has committed.
        assert counting and all("logs_workflowrun" not in sql for sql in counting)


def test_a_list_item_whose_run_ends_with_no_step_to_log_is_counted_by_its_end_too(make_workflow, sent):
    from django.test.utils import CaptureQueriesContext

    from workflows.engine import run_execute

    small = make_workflow("small", parameters=[{"name": "n", "type": "integer", "required": True}],
                          only_when="{{ params.n > 10 }}", steps=[GREET])
    batch = batch_create(workflow=small, items=[3], item_param="n")
    scheduled_runs_dispatch()
    run = WorkflowRun.objects.get()
    with CaptureQueriesContext(connection) as queries:
        run_execute(run.id)
    run.refresh_from_db()
    batch.refresh_from_db()
    assert run.status == "skipped" and not StepRun.objects.filter(run=run).exists()
    assert (batch.done, batch.finished_at == run.finished_at) == (1, True)
    counting = [query["sql"] for query in queries if "scheduler_batch" in query["sql"]]
    if connection.vendor == "postgresql":
        assert len(counting) == 1 and "logs_workflowrun" in counting[0]
    else:
        assert counting and all("logs_workflowrun" not in sql for sql in counting)


@pytest.mark.django_db(transaction=True)  # as in a worker: no test transaction around the engine's own
def test_a_list_item_whose_run_was_taken_over_is_not_counted_by_the_old_worker(greet, sent, monkeypatch):
    from workflows import engine

    batch = batch_create(workflow=greet, items=["a"], item_param="name")
    scheduled_runs_dispatch()
    run = WorkflowRun.objects.get()
    write = engine._write_claimed

    def taken_over(claimed, changes, *args, **options):
        if "finished_at" in changes:  # another worker claimed the run meanwhile (this one's lease ran out)
            WorkflowRun.objects.filter(id=claimed.id).update(claim=claimed.claim + 1)
        return write(claimed, changes, *args, **options)

    monkeypatch.setattr(engine, "_write_claimed", taken_over)
    engine.run_execute(run.id)
    batch.refresh_from_db()
    assert (batch.done, batch.failed, batch.finished_at) == (0, 0, None)
    assert ScheduledRun.objects.get().outcome == ""
    assert WorkflowRun.objects.get().status == "running"  # the new owner ends it, and counts it then


def test_items_are_spaced_by_the_interval(greet):
    start = timezone.now()
    batch = batch_create(workflow=greet, items=["a", "b", "c"], item_param="name", interval_seconds=30,
                         start_at=start)
    due = list(ScheduledRun.objects.filter(batch=batch).order_by("item_index").values_list("due_at", flat=True))
    assert [(d - start).total_seconds() for d in due] == [0, 30, 60]
    assert scheduled_runs_dispatch(now=start + timedelta(seconds=31)) == 2


def test_records_as_items_are_resolved_when_their_run_starts(make_workflow):
    leads = data_type_create(name="lead", fields=[{"name": "email", "type": "email"}])
    a = record_create(data_type=leads, fields={"email": "a@example.com"})
    b = record_create(data_type=leads, fields={"email": "b@example.com"})
    workflow = make_workflow("mail", parameters=[{"name": "lead", "type": "record:lead", "required": True}])
    from datastore.selectors import record_to_dict

    batch_create(workflow=workflow, items=[record_to_dict(a), record_to_dict(b)], item_param="lead")
    assert ScheduledRun.objects.filter(params__lead=str(a.id)).exists()  # stored as its id
    scheduled_runs_dispatch()
    emails = sorted(run.params["lead"]["email"] for run in WorkflowRun.objects.all())
    assert emails == ["a@example.com", "b@example.com"]


def test_record_items_are_read_in_one_query_per_batch_and_a_deleted_one_fails_alone(make_workflow):
    from django.test.utils import CaptureQueriesContext

    from datastore.selectors import record_to_dict
    from datastore.services import record_delete

    leads = data_type_create(name="lead", fields=[{"name": "n", "type": "integer"}])
    workflow = make_workflow("mail", parameters=[{"name": "lead", "type": "record:lead", "required": True}])
    queries = {}
    for size in (3, 30):
        records = [record_create(data_type=leads, fields={"n": n}) for n in range(size)]
        batch = batch_create(workflow=workflow, items=[record_to_dict(r) for r in records], item_param="lead")
        record_delete(record=records[1])  # after it was scheduled: its run cannot start
        with CaptureQueriesContext(connection) as captured:
            assert scheduled_runs_dispatch() == size
        queries[size] = len(captured)
        runs = {row.item_index: row.run for row in ScheduledRun.objects.filter(batch=batch).select_related("run")}
        assert runs[1].status == "failed" and f"no lead record with id '{records[1].id}'" in runs[1].error
        assert [runs[i].params["lead"]["n"] for i in range(size) if i != 1] == [n for n in range(size) if n != 1]
        assert all(runs[i].status == "queued" for i in range(size) if i != 1)
    # Ten times the items, the same statements (the one failed run's writes included).
    assert queries[30] == queries[3]


def test_items_that_do_not_fit_the_parameter_are_named(make_workflow):
    workflow = make_workflow("count", parameters=[{"name": "n", "type": "integer", "required": True}])
    with pytest.raises(ParameterError) as caught:
        batch_create(workflow=workflow, items=[1, 2, "three"], item_param="n")
    assert list(caught.value.fields) == ["list[2]"]


def test_an_unknown_item_param_is_named(greet):
    with pytest.raises(ValidationError) as caught:
        batch_create(workflow=greet, items=["a"], item_param="nom")
    assert "name" in caught.value.fields["item_param"]


def test_a_list_over_the_limit_is_refused(greet, settings):
    settings.ENGINE_ROOM_LIST_MAX_ITEMS = 3
    with pytest.raises(ValidationError, match="at most 3"):
        batch_create(workflow=greet, items=list("abcd"), item_param="name")


def test_batch_counts_failures_and_cancellations(make_workflow, drain):
    workflow = make_workflow("check", parameters=[{"name": "n", "type": "integer", "required": True}], steps=[
        {"action": "set_values", "config": {"values": {"ratio": "{{ 10 / params.n }}"}}},
    ])
    batch = batch_create(workflow=workflow, items=[1, 0, 2, 5], item_param="n", interval_seconds=60)
    scheduled_runs_dispatch(now=later(61))  # items 0 and 1
    drain()
    assert batch_cancel(batch=batch) == 2
    batches_recount()
    batch.refresh_from_db()
    assert (batch.done, batch.failed, batch.cancelled, batch.percent) == (1, 1, 2, 100)
    assert batch.finished_at is not None


def test_100000_items_are_written_in_seconds(greet):
    started = time.monotonic()
    batch = batch_create(workflow=greet, items=[f"n{i}" for i in range(100_000)], item_param="name",
                         interval_seconds=0.01)
    elapsed = time.monotonic() - started
    assert ScheduledRun.objects.filter(batch=batch).count() == 100_000
    last = ScheduledRun.objects.get(batch=batch, item_index=99_999)
    assert last.params == {"name": "n99999"}
    # Generous: the calling run's default timeout is 300 s; on a quiet machine this takes a few.
    assert elapsed < 60, elapsed


def test_a_row_that_cannot_start_does_not_hold_back_the_others(greet, monkeypatch):
    rows = [scheduled_run_create(workflow=greet, params={"name": n}, due_at=later(-1)) for n in "ab"]
    from workflows import parameters

    real = parameters._coerce

    def flaky(specs, values, source):
        if values["name"] == "a":
            raise RuntimeError("boom")
        return real(specs, values, source)

    # The batch's coercion fails; each row is then tried on its own, and only "a" fails again.
    monkeypatch.setattr(parameters, "_coerce", flaky)
    assert scheduled_runs_dispatch() == 2
    first, second = (ScheduledRun.objects.get(id=row.id) for row in rows)
    assert first.run is None and "RuntimeError: boom" in first.error
    assert second.run.params == {"name": "b"}


@pytest.mark.django_db(transaction=True)
def test_a_list_run_failed_before_it_started_counts_at_once_and_is_announced(greet):
    from logs.signals import run_finished

    heard = []
    run_finished.connect(lambda sender, run, **kw: heard.append(run.status), weak=False, dispatch_uid="t")
    try:
        batch = batch_create(workflow=greet, items=["a"], item_param="name")
        workflow_update(workflow=greet, definition={
            "format": 1, "name": "greet", "parameters": [{"name": "age", "type": "integer", "required": True}],
        })
        workflow_publish(workflow=greet)
        scheduled_runs_dispatch()
    finally:
        run_finished.disconnect(dispatch_uid="t")
    batch.refresh_from_db()
    assert heard == ["failed"] and (batch.failed, batch.finished_at is not None) == (1, True)
