"""The scheduler with real processes: a Celery worker and beat on Redis and PostgreSQL.

Bounds are generous (a noisy 2-core machine must not make them flaky); accuracy is for the benchmarks.
"""
import time
from datetime import datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from werkzeug import Response

from logs.models import RunStatus, WorkflowRun
from scheduler.models import Batch, RecurringEvent, ScheduledRun
from scheduler.services import (
    batch_create,
    recurring_event_create,
    scheduled_run_create,
    scheduled_runs_cancel,
)
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Short ticks for the real processes: the dispatcher and recount every second, a missed slot after 3 s.
FAST = {
    "ENGINE_ROOM_DISPATCH_SECONDS": "1",
    "ENGINE_ROOM_BATCH_RECOUNT_SECONDS": "1",
    "ENGINE_ROOM_RECURRING_MISSED_AFTER_SECONDS": "3",
    "ENGINE_ROOM_RECURRING_FALLBACK_SECONDS": "1",
}
FINISHED = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.TERMINATED, RunStatus.CANCELLED]


@pytest.fixture(autouse=True)
def _empty_test_queues():
    """Messages left by earlier tests must not reach this test's worker."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def greet(make_workflow):
    return make_workflow("greet", parameters=[{"name": "name", "type": "text"}],
                         steps=[{"action": "set_values", "config": {"values": {"hello": "{{ params.name }}"}}}])


def start(processes, worker_concurrency=2):
    processes.worker(concurrency=worker_concurrency, env=FAST)
    processes.beat(env=FAST)


def slot_of(run: WorkflowRun) -> datetime:
    return datetime.fromisoformat(run.caller.split(" @ ")[1].split(" ")[0])


def test_a_scheduled_run_starts_after_its_due_time_and_a_cancelled_one_never_runs(processes, greet):
    start(processes)
    due = timezone.now() + timedelta(seconds=2)
    kept = scheduled_run_create(workflow=greet, params={"name": "kept"}, due_at=due)
    dropped = scheduled_run_create(workflow=greet, params={"name": "dropped"}, due_at=due)
    assert scheduled_runs_cancel(ids=[dropped.id]) == 1

    run = wait_until(
        lambda: WorkflowRun.objects.filter(params__name="kept", status=RunStatus.SUCCEEDED).first(),
        timeout=40, message="the scheduled run to finish",
    )
    assert due <= run.started_at <= due + timedelta(seconds=10), (run.started_at - due, processes.logs())
    assert ScheduledRun.objects.get(id=kept.id).run_id == run.id
    time.sleep(3)  # a few more dispatcher ticks
    assert ScheduledRun.objects.get(id=dropped.id).status == "cancelled"
    assert list(WorkflowRun.objects.values_list("params__name", flat=True)) == ["kept"]


def test_the_procfiles_worker_line_runs_beat_inside_it(processes, greet):
    """`make run` starts no beat of its own: the `worker` line embeds one, and it dispatches due runs."""
    processes.procfile("worker", env=FAST)
    due = timezone.now() + timedelta(seconds=1)
    scheduled_run_create(workflow=greet, params={"name": "procfile"}, due_at=due)

    run = wait_until(
        lambda: WorkflowRun.objects.filter(params__name="procfile", status=RunStatus.SUCCEEDED).first(),
        timeout=40, message="the scheduled run to finish",
    )
    assert run.started_at >= due
    assert "beat: Starting" in processes.logs()


def test_a_list_of_1000_items_runs_each_item_once_and_the_batch_says_so(processes, greet):
    start(processes, worker_concurrency=3)
    items = [f"item-{i}" for i in range(1000)]
    batch = batch_create(workflow=greet, items=items, item_param="name")

    batch = wait_until(lambda: Batch.objects.filter(id=batch.id, done=1000).first(), timeout=240,
                       interval=1, message="the batch to report 1,000 done")
    runs = WorkflowRun.objects.filter(trigger="list")
    assert runs.count() == 1000
    assert sorted(runs.values_list("params__name", flat=True)) == sorted(items)
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}
    assert set(runs.values_list("queue", flat=True)) == {"bulk"}
    assert (batch.total, batch.failed, batch.cancelled, batch.finished_at is not None) == (1000, 0, 0, True)


def test_an_interval_event_fires_on_time_repeatedly(processes, greet):
    start(processes)
    first = timezone.now().replace(microsecond=0) + timedelta(seconds=3)
    event = recurring_event_create(workflow=greet, frequency={"every": 2, "unit": "seconds"}, start=first,
                                   overlap="allow")
    wait_until(lambda: WorkflowRun.objects.filter(trigger="recurring").count() >= 5, timeout=60,
               message="five fires")
    runs = list(WorkflowRun.objects.filter(trigger="recurring").order_by("created"))[:5]
    slots = [slot_of(run) for run in runs]
    assert slots == [first + timedelta(seconds=2 * k) for k in range(5)], processes.logs()
    for run, slot in zip(runs, slots, strict=True):
        assert slot <= run.created <= slot + timedelta(seconds=5), (run.created - slot)
    assert RecurringEvent.objects.get(id=event.id).fire_count >= 5


def test_beat_down_across_a_fire_catches_up_once_under_catch_up_and_not_at_all_under_skip(processes, greet):
    processes.worker(env=FAST)
    beat = processes.beat(env=FAST)
    due = timezone.now().replace(microsecond=0) + timedelta(seconds=8)
    hourly = {"every": 1, "unit": "hours"}
    catch_up = recurring_event_create(workflow=greet, frequency=hourly, start=due, missed="catch_up",
                                      params={"name": "catch_up"})
    skip = recurring_event_create(workflow=greet, frequency=hourly, start=due, missed="skip", params={"name": "skip"})
    processes.kill(beat)
    assert timezone.now() < due - timedelta(seconds=2), "beat must be down before the fire time"

    # Down across the fire time, and past the 3 s after which a fire counts as missed.
    time.sleep((due - timezone.now()).total_seconds() + 6)
    assert not WorkflowRun.objects.exists(), "nothing fires while beat is down"
    processes.beat(env=FAST)
    wait_until(lambda: RecurringEvent.objects.filter(last_slot=due).count() == 2, timeout=40,
               message="both events to take their missed slot")
    wait_until(lambda: not WorkflowRun.objects.exclude(status__in=FINISHED).exists(), timeout=30,
               message="the runs to finish")
    time.sleep(3)  # more beat and dispatcher ticks: nothing may fire twice

    caught = list(WorkflowRun.objects.filter(params__name="catch_up"))
    assert [(r.status, slot_of(r)) for r in caught] == [("succeeded", due)], processes.logs()
    assert "catch-up" in caught[0].caller
    skipped = list(WorkflowRun.objects.filter(params__name="skip"))
    assert [r.status for r in skipped] == ["skipped"] and "missed-run policy is skip" in skipped[0].error
    for event in (catch_up, skip):
        event.refresh_from_db()
        assert event.next_slot == due + timedelta(hours=1)


def test_a_slow_run_is_not_overlapped_under_skip(processes, make_workflow, httpserver):
    def slow(request):
        time.sleep(4)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    workflow = make_workflow("slow", steps=[
        {"action": "http_request", "config": {"url": httpserver.url_for("/slow"), "timeout_seconds": 20}},
    ])
    start(processes, worker_concurrency=2)
    first = timezone.now().replace(microsecond=0) + timedelta(seconds=2)
    recurring_event_create(workflow=workflow, frequency={"every": 1, "unit": "seconds"}, start=first, overlap="skip")

    wait_until(lambda: WorkflowRun.objects.filter(status=RunStatus.SUCCEEDED).count() >= 2, timeout=60,
               message="two slow runs to finish")
    executed = list(WorkflowRun.objects.exclude(status=RunStatus.SKIPPED).exclude(started_at=None)
                    .order_by("started_at"))
    for earlier, later in zip(executed, executed[1:], strict=False):
        assert earlier.finished_at is not None and later.started_at >= earlier.finished_at, "runs overlapped"
    skipped = WorkflowRun.objects.filter(status=RunStatus.SKIPPED)
    assert skipped.count() >= 2 and "overlap policy is skip" in skipped.first().error
