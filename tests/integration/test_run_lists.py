"""Run lists: runs started alone wait on a Redis list and share a few drainer messages (workflows/run_lists.py)."""
import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from django.db import transaction

from config.cache import redis_client
from logs.models import RunStatus, StepRun, WorkflowRun
from tests.api_endpoints import conftest as api_fixtures
from tests.integration.conftest import wait_until
from workflows import run_lists
from workflows.services import run_enqueue

_fresh_caches = api_fixtures._fresh_caches
make_workflow = api_fixtures.make_workflow
admin_token = api_fixtures.admin_token

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STEPS = [
    {"key": "a", "action": "set_values", "config": {"values": {"n": "{{ params.n }}"}}},
    {"key": "b", "action": "set_values", "config": {"values": {"twice": "{{ steps.a.n * 2 }}"}}},
]
TIMEOUT = 300  # a workflow's default timeout_seconds: its runs share that list
N = {"name": "n", "type": "integer", "required": True}


def _broker(settings):
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _messages(settings, queue: str) -> list[str]:
    """The task names of the messages waiting in a queue of the (Redis) broker."""
    return [json.loads(raw)["headers"]["task"] for raw in _broker(settings).lrange(queue, 0, -1)]


def _enqueue(workflow, n: int) -> WorkflowRun:
    with transaction.atomic():
        return run_enqueue(workflow=workflow, params={"n": n}, trigger="manual")


def test_webhook_runs_share_a_few_drainer_messages(live_server, processes, make_workflow, admin_token, settings):
    """Sixty webhook calls at once all succeed, every run claimed once, carried by far fewer messages than runs."""
    make_workflow("listed", steps=STEPS, parameters=[N])
    worker = processes.worker(concurrency=2)

    def call(n):
        response = requests.post(f"{live_server.url}/api/wf/listed", json={"n": n},
                                 headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()["run_id"]

    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(call, range(60)))
    assert wait_until(lambda: WorkflowRun.objects.filter(id__in=run_ids, status=RunStatus.SUCCEEDED).count() == 60,
                      message="sixty listed runs")
    # Each run executed once: two steps logged, one attempt each.
    assert StepRun.objects.filter(run_id__in=run_ids).count() == 120
    log = next(path for process, path in processes.running if process is worker).read_text()
    drainers = len(re.findall(r"workflows\.tasks\.runs_drain\[[^\]]+\] received", log))
    assert "workflows.tasks.run_execute[" not in log
    assert 1 <= drainers < 60, f"{drainers} drainer messages for 60 runs"
    keys = run_lists._keys("interactive", TIMEOUT)
    # Every drainer leaves once the list is empty, giving up its place.
    assert wait_until(lambda: _broker(settings).zcard(keys[1]) == 0, message="the drainers to leave")
    assert _broker(settings).llen(keys[0]) == 0


def test_a_run_lost_with_its_list_is_resent_by_the_sweeper(live_server, processes, make_workflow, admin_token,
                                                          settings):
    """Redis loses the list and the drainer's message (it keeps nothing on disk): the run still succeeds."""
    make_workflow("lost", steps=STEPS, parameters=[N])
    queued = requests.post(f"{live_server.url}/api/wf/lost", json={"n": 4},
                           headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)
    assert queued.status_code == 202, queued.text
    assert _messages(settings, settings.QUEUE_INTERACTIVE) == ["workflows.tasks.runs_drain"]
    _broker(settings).flushdb()
    fast_sweep = {"ENGINE_ROOM_SWEEP_SECONDS": "1", "ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS": "2"}
    worker = processes.worker(concurrency=1, env=fast_sweep)
    processes.beat(env=fast_sweep)
    run = WorkflowRun.objects.get(id=queued.json()["run_id"])
    assert wait_until(lambda: WorkflowRun.objects.get(id=run.id).status == RunStatus.SUCCEEDED, timeout=60,
                      message="the swept run")
    log = next(path for process, path in processes.running if process is worker).read_text()
    assert "Sweeper resent 0 expired and 1 stale runs" in log


def test_a_drainer_starts_only_when_more_runs_wait_than_idle_drainers(make_workflow, settings):
    """The first run starts a drainer; the next ones start another only while more wait than idle drainers, up
    to ENGINE_ROOM_DRAINERS; a place left stale by a dead drainer no longer counts."""
    settings.ENGINE_ROOM_DRAINERS = 2
    workflow = make_workflow("counted", steps=STEPS, parameters=[N])
    keys = run_lists._keys("interactive", TIMEOUT)
    queue = settings.QUEUE_INTERACTIVE

    _enqueue(workflow, 1)
    assert _messages(settings, queue) == ["workflows.tasks.runs_drain"]
    _enqueue(workflow, 2)  # two wait, one idle drainer: a second one
    _enqueue(workflow, 3)  # three wait, two drainers: the most allowed
    _enqueue(workflow, 4)
    assert _messages(settings, queue) == ["workflows.tasks.runs_drain"] * 2
    assert _broker(settings).llen(keys[0]) == 4

    # Both places go stale (their drainers died before starting): the next run starts a drainer again.
    _broker(settings).zadd(keys[1], {member: 0 for member in _broker(settings).zrange(keys[1], 0, -1)})
    _enqueue(workflow, 5)
    assert _messages(settings, queue) == ["workflows.tasks.runs_drain"] * 3
    assert _broker(settings).zcard(keys[1]) == 1


def test_a_run_does_not_wait_behind_a_busy_drainer(make_workflow, settings):
    """While the only drainer executes a (long) run, a new run starts a second drainer at once rather than
    wait for that run to end; an idle drainer takes the next run itself."""
    workflow = make_workflow("busy", steps=STEPS, parameters=[N])
    keys = run_lists._keys("interactive", TIMEOUT)
    queue = settings.QUEUE_INTERACTIVE
    _enqueue(workflow, 1)
    token = _broker(settings).zrange(keys[1], 0, -1)[0].decode()
    _broker(settings).delete(queue)

    # The drainer takes the run (and is busy with it): the list is empty, nothing more is started.
    take = run_lists._script(run_lists._TAKE, run_lists.DRAIN_TIMEOUT)
    taken, started = take(keys=keys, args=[*run_lists._limits(), token, ""])
    assert taken is not None and started is None
    _enqueue(workflow, 2)
    assert _messages(settings, queue) == ["workflows.tasks.runs_drain"]

    # Back from its run, it finds the list empty (idle again): the next run is its to take, no message.
    _broker(settings).delete(queue)
    assert run_lists.drain("interactive", TIMEOUT, token) == 1  # takes run 2, then leaves
    _enqueue(workflow, 3)
    places = [member.decode() for member in _broker(settings).zrange(keys[1], 0, -1)]
    assert token not in places and len(places) == 1  # the second drainer's place, which run 3 found idle
    assert _messages(settings, queue) == []


def test_a_drainer_back_from_a_stale_place_leaves_when_the_places_are_full(make_workflow, settings):
    """Messages that waited behind others (no worker running, say) lost their places to newer drainers:
    when they do run while those are at work, they take nothing and leave, rather than go over
    ENGINE_ROOM_DRAINERS for as long as the list is long; with a place free, such a drainer takes it back."""
    settings.ENGINE_ROOM_DRAINERS = 2
    workflow = make_workflow("stale", steps=STEPS, parameters=[N])
    keys = run_lists._keys("interactive", TIMEOUT)
    runs = [_enqueue(workflow, n) for n in range(3)]
    assert _broker(settings).zcard(keys[1]) == 2  # both places held, and their drainers at work:
    seconds, micros = _broker(settings).time()
    _broker(settings).zadd(keys[1], {member: seconds + micros / 1_000_000
                                     for member in _broker(settings).zrange(keys[1], 0, -1)})
    _broker(settings).delete(settings.QUEUE_INTERACTIVE)

    assert run_lists.drain("interactive", TIMEOUT, "a-stale-token") == 0
    assert _broker(settings).llen(keys[0]) == 3  # nothing taken, nothing lost
    assert _broker(settings).zcard(keys[1]) == 2 and _broker(settings).zscore(keys[1], "a-stale-token") is None
    assert _messages(settings, settings.QUEUE_INTERACTIVE) == []  # and no place handed on

    # An id it had already taken (BLPOP) goes back to the head of the list.
    take = run_lists._script(run_lists._TAKE, run_lists.DRAIN_TIMEOUT)
    assert take(keys=keys, args=[*run_lists._limits(), "a-stale-token", "popped", 20]) == [None, None, 1]
    assert _broker(settings).lpop(keys[0]) == b"popped"

    _broker(settings).zpopmin(keys[1])  # one place freed: the same drainer now takes it and drains
    assert run_lists.drain("interactive", TIMEOUT, "a-stale-token") == 3
    assert {WorkflowRun.objects.get(id=run.id).status for run in runs} == {RunStatus.SUCCEEDED}


def test_a_drainer_back_from_a_stale_place_works_when_no_place_is_renewed(make_workflow, settings):
    """Places at the cap but none renewed for seconds (their drainers may have died, not yet stale): a drainer
    back from a stale place works over the cap rather than leave the runs waiting."""
    settings.ENGINE_ROOM_DRAINERS = 2
    workflow = make_workflow("quiet", steps=STEPS, parameters=[N])
    keys = run_lists._keys("interactive", TIMEOUT)
    runs = [_enqueue(workflow, n) for n in range(3)]
    seconds, micros = _broker(settings).time()
    quiet = seconds + micros / 1_000_000 - 10  # older than "recent", younger than stale (30 s)
    _broker(settings).zadd(keys[1], {member: quiet for member in _broker(settings).zrange(keys[1], 0, -1)})

    assert run_lists.drain("interactive", TIMEOUT, "a-stale-token") == 3
    assert {WorkflowRun.objects.get(id=run.id).status for run in runs} == {RunStatus.SUCCEEDED}


def test_a_run_that_raises_does_not_stop_the_drainer(make_workflow, settings):
    """An id the engine cannot execute (here not a run's id at all) is logged; the runs after it still run."""
    workflow = make_workflow("brave", steps=STEPS, parameters=[N])
    first = _enqueue(workflow, 1)
    keys = run_lists._keys("interactive", TIMEOUT)
    _broker(settings).rpush(keys[0], "not-a-run")
    last = _enqueue(workflow, 2)
    token = _broker(settings).zrange(keys[1], 0, -1)[0].decode()

    assert run_lists.drain("interactive", TIMEOUT, token) == 3
    assert {WorkflowRun.objects.get(id=run.id).status for run in (first, last)} == {RunStatus.SUCCEEDED}


def test_a_run_goes_as_a_message_when_redis_does_not_answer_the_push(make_workflow, settings):
    """The list's Redis refuses the push: the run is sent in a message of its own, so nothing waits on it."""
    workflow = make_workflow("refused", steps=STEPS, parameters=[N])
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there; the broker is untouched
    redis_client.cache_clear()
    run_lists._script.cache_clear()
    try:
        _enqueue(workflow, 1)
    finally:
        redis_client.cache_clear()
        run_lists._script.cache_clear()
    assert _messages(settings, settings.QUEUE_INTERACTIVE) == ["workflows.tasks.run_execute"]


def test_a_drainer_runs_what_waits_then_leaves(make_workflow, settings):
    """A drainer executes the listed runs in turn, then gives up its place once the list stays empty."""
    workflow = make_workflow("drained", steps=STEPS, parameters=[N])
    runs = [_enqueue(workflow, n) for n in range(5)]
    keys = run_lists._keys("interactive", TIMEOUT)
    token = _broker(settings).zrange(keys[1], 0, -1)[0].decode()

    assert run_lists.drain("interactive", TIMEOUT, token) == 5
    assert [WorkflowRun.objects.get(id=run.id).status for run in runs] == [RunStatus.SUCCEEDED] * 5
    assert WorkflowRun.objects.get(id=runs[3].id).steps.get(key="b").output == {"twice": 6}
    # Its place is given up; the two other drainers the pushes started (not run here) keep theirs.
    places = [member.decode() for member in _broker(settings).zrange(keys[1], 0, -1)]
    assert token not in places and len(places) == 2
    assert _broker(settings).llen(keys[0]) == 0


def test_a_drainer_hands_its_place_on_after_its_time(make_workflow, settings):
    """Past ENGINE_ROOM_MESSAGE_SECONDS a drainer starts no more runs: a new message with its place takes the rest."""
    settings.ENGINE_ROOM_MESSAGE_SECONDS = 0.0
    workflow = make_workflow("handed", steps=STEPS, parameters=[N])
    runs = [_enqueue(workflow, n) for n in range(3)]
    keys = run_lists._keys("interactive", TIMEOUT)
    token = _broker(settings).zrange(keys[1], 0, -1)[0].decode()
    queue = settings.QUEUE_INTERACTIVE
    _broker(settings).delete(queue)

    assert run_lists.drain("interactive", TIMEOUT, token) == 0
    messages = [json.loads(raw) for raw in _broker(settings).lrange(queue, 0, -1)]
    assert [message["headers"]["task"] for message in messages] == ["workflows.tasks.runs_drain"]
    assert json.loads(base64.b64decode(messages[0]["body"]))[0] == ["interactive", TIMEOUT, token]
    assert token in [member.decode() for member in _broker(settings).zrange(keys[1], 0, -1)]
    assert _broker(settings).llen(keys[0]) == 3
    assert {WorkflowRun.objects.get(id=run.id).status for run in runs} == {RunStatus.QUEUED}


def test_runs_go_in_messages_of_their_own_when_lists_are_off(make_workflow, settings):
    """ENGINE_ROOM_RUN_LISTS=false sends each run alone, as before lists."""
    settings.ENGINE_ROOM_RUN_LISTS = False
    workflow = make_workflow("unlisted", steps=STEPS, parameters=[N])
    _enqueue(workflow, 1)
    _enqueue(workflow, 2)
    assert _messages(settings, settings.QUEUE_INTERACTIVE) == ["workflows.tasks.run_execute"] * 2
    assert _broker(settings).llen(run_lists._keys("interactive", TIMEOUT)[0]) == 0


def _statements(queries: list[dict]) -> tuple[int, int]:
    """How many claims went alone (an UPDATE of a run to running) and how many rode on another run's end."""
    alone = sum(1 for query in queries if query["sql"].startswith('UPDATE "logs_workflowrun" SET status = ')
                and "claim = claim + 1" in query["sql"])
    riding = sum(1 for query in queries if query["sql"].startswith("WITH claimed AS") and "following AS" in query["sql"])
    return alone, riding


def test_a_run_end_claims_the_next_listed_run(make_workflow, settings):
    """Each run's end takes the next id and claims that run in the same statement: one claim of its own
    (the first run's) for a drainer's whole stretch, and every run still ran once, claimed once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    workflow = make_workflow("chained", steps=STEPS, parameters=[N])
    runs = [_enqueue(workflow, n) for n in range(4)]
    keys = run_lists._keys("interactive", TIMEOUT)
    token = _broker(settings).zrange(keys[1], 0, -1)[0].decode()

    with CaptureQueriesContext(connection) as captured:
        assert run_lists.drain("interactive", TIMEOUT, token) == 4

    assert _statements(captured.captured_queries) == (1, 3)
    rows = [WorkflowRun.objects.get(id=run.id) for run in runs]
    assert [(row.status, row.claim) for row in rows] == [(RunStatus.SUCCEEDED, 1)] * 4
    assert rows[3].steps.get(key="b").output == {"twice": 6}
    # Each run started when the one before it ended, not when it was taken.
    assert all(later.started_at >= earlier.finished_at for earlier, later in zip(rows, rows[1:], strict=False))


def test_a_next_run_the_end_cannot_claim_is_claimed_by_the_drainer(make_workflow, settings):
    """A run the ending statement may not claim (its workflow limits concurrency) is claimed on its own."""
    plain = make_workflow("plain", steps=STEPS, parameters=[N])
    limited = make_workflow("limited", steps=STEPS, parameters=[N], max_concurrency=1)
    runs = [_enqueue(plain, 1), _enqueue(limited, 2), _enqueue(plain, 3)]
    keys = run_lists._keys("interactive", TIMEOUT)
    token = _broker(settings).zrange(keys[1], 0, -1)[0].decode()

    assert run_lists.drain("interactive", TIMEOUT, token) == 3
    assert [WorkflowRun.objects.get(id=run.id).status for run in runs] == [RunStatus.SUCCEEDED] * 3


def test_an_end_written_without_its_claim_claims_no_next_run(make_workflow):
    """A worker that lost its run's claim writes no end, and so claims nothing for its next run either."""
    from workflows import engine

    workflow = make_workflow("lost", steps=STEPS, parameters=[N])
    ours, following = _enqueue(workflow, 1), _enqueue(workflow, 2)
    run = engine._claim(ours.id)
    WorkflowRun.objects.filter(id=run.id).update(claim=run.claim + 1)  # another worker took it over
    offer = engine.NextRun(run.id, lambda: str(following.id))
    token = engine.next_run.set(offer)
    try:
        ending = {"status": RunStatus.SUCCEEDED, "finished_at": run.created, "lease_expires_at": None}
        assert engine._write_claimed(run, ending, 0.0, []) is None
    finally:
        engine.next_run.reset(token)

    assert offer.run_id == str(following.id) and offer.claimed is None
    assert WorkflowRun.objects.get(id=following.id).status == RunStatus.QUEUED


def test_runs_of_a_message_claim_the_next_also_from_an_end_that_writes_a_record(make_workflow):
    """In a message of several runs each end claims the next run, an end written in the transaction of a
    step that creates a record too (the claim holds once that commits); each run wrote its record once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from datastore.models import Record
    from datastore.services import data_type_create
    from workflows import engine

    data_type_create(name="mark", fields=[{"name": "n", "type": "integer"}])
    workflow = make_workflow("marking", parameters=[N], steps=[
        {"key": "a", "action": "set_values", "config": {"values": {"n": "{{ params.n }}"}}},
        {"key": "b", "action": "create_record", "config": {"type": "mark", "fields": {"n": "{{ steps.a.n }}"}}},
    ])
    runs = [_enqueue(workflow, n) for n in range(3)]
    WorkflowRun.objects.filter(id__in=[run.id for run in runs]).update(queue="default")

    with CaptureQueriesContext(connection) as captured:
        engine.run_execute_many([str(run.id) for run in runs], "default", TIMEOUT)

    assert _statements(captured.captured_queries) == (1, 2)
    assert [(row.status, row.claim) for row in (WorkflowRun.objects.get(id=run.id) for run in runs)] == \
        [(RunStatus.SUCCEEDED, 1)] * 3
    assert sorted(Record.objects.filter(data_type__name="mark").values_list("data__n", flat=True)) == [0, 1, 2]


def test_a_next_run_claimed_in_a_step_transaction_that_rolls_back_is_claimed_again(make_workflow, monkeypatch):
    """The step's transaction that carried the next run's claim fails after the statement: the claim is
    rolled back with it, and the next run is claimed on its own and runs once."""
    from django.db import IntegrityError, transaction

    from datastore.services import data_type_create
    from workflows import engine

    data_type_create(name="mark", fields=[{"name": "n", "type": "integer"}])
    workflow = make_workflow("unlucky", parameters=[N], steps=[
        {"key": "b", "action": "create_record", "config": {"type": "mark", "fields": {"n": "{{ params.n }}"}}},
    ])
    first, second = _enqueue(workflow, 1), _enqueue(workflow, 2)
    write, failed = engine._write_claimed, []

    def then_fail(run, changes, *args, **options):
        written = write(run, changes, *args, **options)
        if str(run.id) == str(first.id) and not failed and transaction.get_connection().in_atomic_block:
            failed.append(run.id)
            raise IntegrityError("the step's transaction failed after its end was written")
        return written

    monkeypatch.setattr(engine, "_write_claimed", then_fail)
    engine.run_execute_many([str(first.id), str(second.id)], "default", TIMEOUT)

    assert failed == [first.id]
    after = WorkflowRun.objects.get(id=second.id)
    assert (after.status, after.claim) == (RunStatus.SUCCEEDED, 1)
    # The first run's step failed as any step whose commit fails does (no retries here), reason logged.
    before = WorkflowRun.objects.get(id=first.id)
    assert before.status == RunStatus.FAILED and "the step's transaction failed" in before.error


@pytest.mark.parametrize("carrier", ["list", "message"])
def test_a_next_run_taken_when_an_error_escapes_is_released_and_given_back(make_workflow, settings, monkeypatch,
                                                                             carrier):
    """The time limit strikes after a run's end took (and claimed) the next: that run is released, queued
    again, and its id goes back to the head of the list (or out in the message's hand-back), unlost."""
    from celery.exceptions import SoftTimeLimitExceeded

    from workflows import engine

    settings.ENGINE_ROOM_MESSAGE_SECONDS = 60
    workflow = make_workflow("struck", steps=STEPS, parameters=[N])
    first, second = _enqueue(workflow, 1), _enqueue(workflow, 2)
    keys = run_lists._keys("interactive", TIMEOUT)
    real = engine.Execution.execute

    def execute(self):
        done = real(self)
        if str(self.run.id) == str(first.id):
            raise SoftTimeLimitExceeded()
        return done

    monkeypatch.setattr(engine.Execution, "execute", execute)
    with pytest.raises(SoftTimeLimitExceeded):
        if carrier == "list":
            token = _broker(settings).zrange(keys[1], 0, -1)[0].decode()
            run_lists.drain("interactive", TIMEOUT, token)
        else:
            _broker(settings).delete(keys[0])
            engine.run_execute_many([str(first.id), str(second.id)], "interactive", TIMEOUT)

    assert WorkflowRun.objects.get(id=first.id).status == RunStatus.SUCCEEDED
    released = WorkflowRun.objects.get(id=second.id)
    assert (released.status, released.claim, released.started_at) == (RunStatus.QUEUED, 1, None)
    # Back at the head of the list; from a message, sent again as a run started alone is (here: listed).
    assert _broker(settings).lindex(keys[0], 0).decode() == str(second.id)
    # Given back, it runs as any run does.
    monkeypatch.setattr(engine.Execution, "execute", real)
    assert engine.run_execute(second.id).status == RunStatus.SUCCEEDED


def test_a_run_claimed_long_before_it_starts_renews_its_lease_or_stops_if_taken_over(make_workflow, httpserver):
    """A run an end claimed whose start came a third of a lease later renews its lease first; if another
    worker took it over meanwhile (the lease lapsed), this worker runs none of its steps: its call out
    is not made twice."""
    from datetime import timedelta

    from django.utils import timezone

    from workflows import engine

    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    workflow = make_workflow("late", parameters=[N], steps=[
        {"key": "call", "action": "http_request",
         "config": {"method": "POST", "url": httpserver.url_for("/hook"), "json": {"n": "{{ params.n }}"}}},
    ])
    kept, lost = _enqueue(workflow, 1), _enqueue(workflow, 2)
    soon = timezone.now() + timedelta(seconds=2)
    for queued in (kept, lost):
        WorkflowRun.objects.filter(id=queued.id).update(status=RunStatus.RUNNING, claim=1, lease_expires_at=soon,
                                                        started_at=timezone.now())
    claimed_kept, claimed_lost = (WorkflowRun.objects.get(id=queued.id) for queued in (kept, lost))
    WorkflowRun.objects.filter(id=lost.id).update(claim=2)  # the sweeper requeued it and another worker claimed it

    assert engine.run_execute(kept.id, claimed=claimed_kept).status == RunStatus.SUCCEEDED
    assert engine.run_execute(lost.id, claimed=claimed_lost) is None
    assert [request.get_json() for request, _ in httpserver.log] == [{"n": 1}]
    assert not StepRun.objects.filter(run_id=lost.id).exists()
    assert WorkflowRun.objects.get(id=lost.id).claim == 2
