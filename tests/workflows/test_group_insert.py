"""Webhook runs written at the same moment share one INSERT (config.sql.GroupInsert), each call still
returning only once its own row is committed, and failing only for its own error."""
import threading
import time
import uuid

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction

from config import sql
from logs.models import WorkflowRun
from tests.reliability.drills import marking_workflow
from workflows.services import run_enqueue, runs

pytestmark = pytest.mark.django_db(transaction=True)

WAITING = 12


@pytest.fixture(autouse=True)
def _idle_group():
    """Every test leaves the process's group idle: a batch left half-handed-over would hang every later call."""
    yield
    assert runs._run_inserts._busy is False and runs._run_inserts._waiting == []


def _until(predicate) -> None:
    deadline = time.monotonic() + 20
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _join(threads: list) -> None:
    for thread in threads:
        thread.join(20)
        assert not thread.is_alive(), "a call never returned"


def _held_first_insert(monkeypatch, release: threading.Event, lose_batch: str = "") -> list[int]:
    """insert_rows, its first call held until `release` is set and, with lose_batch "before" or "after", the
    connection lost before or after the second call's INSERT: the rows each call wrote, in order."""
    real, calls = sql.insert_rows, []

    def insert_rows(model, objs):
        calls.append(len(objs))
        if len(calls) == 1:
            assert release.wait(20), "the test never released the first INSERT"
        lost = len(calls) == 2 and lose_batch
        if lost == "before":
            raise OperationalError("server closed the connection unexpectedly")
        real(model, objs)
        if lost == "after":
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(sql, "insert_rows", insert_rows)
    return calls


def _in_thread(target, results: dict, key) -> threading.Thread:
    def run():
        try:
            results[key] = target()
        except Exception as exc:  # the test asserts on it
            results[key] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _enqueue(workflow, n: int, **fields):
    return lambda: run_enqueue(workflow=workflow, params={"n": n}, trigger="webhook", dispatch_on_commit=False,
                               together=True, **fields)


def _wait_for_waiting(count: int) -> None:
    _until(lambda: len(runs._run_inserts._waiting) >= count)


def _one_then_waiting(workflow, calls: list, results: dict, count: int) -> list[threading.Thread]:
    """Call 0 starts the held INSERT; calls 1..count then wait behind it."""
    threads = [_in_thread(_enqueue(workflow, 0), results, 0)]
    _until(lambda: calls)
    threads += [_in_thread(_enqueue(workflow, n), results, n) for n in range(1, count + 1)]
    _wait_for_waiting(count)
    return threads


def test_runs_written_meanwhile_share_one_insert(monkeypatch):
    """While one call's INSERT is under way, twelve more calls wait, then all twelve go in one statement;
    none returns before its row is committed."""
    release = threading.Event()
    calls = _held_first_insert(monkeypatch, release)
    results: dict = {}
    threads = _one_then_waiting(marking_workflow("together"), calls, results, WAITING)
    assert WorkflowRun.objects.count() == 0 and len(results) == 0  # nobody answered before a commit
    release.set()
    _join(threads)

    assert calls == [1, WAITING]
    ids = {results[n].id for n in range(WAITING + 1)}
    assert set(WorkflowRun.objects.values_list("id", flat=True)) == ids
    assert sorted(WorkflowRun.objects.values_list("params__n", flat=True)) == list(range(WAITING + 1))


def test_a_bad_row_fails_only_its_own_call(monkeypatch):
    """A batch with one row the database refuses is written again row by row: that call gets the error,
    the others their runs."""
    workflow = marking_workflow("one_bad")
    release = threading.Event()
    calls = _held_first_insert(monkeypatch, release)
    results: dict = {}
    threads = _one_then_waiting(workflow, calls, results, WAITING - 1)
    # A run id that is already taken: the batch's INSERT fails on its primary key.
    taken = WorkflowRun.objects.create(workflow=workflow, workflow_name="one_bad", trigger="manual", params={},
                                       id=uuid.uuid4())
    threads.append(_in_thread(_enqueue(workflow, WAITING, run_id=taken.id), results, WAITING))
    _wait_for_waiting(WAITING)
    release.set()
    _join(threads)

    assert calls[:2] == [1, WAITING]  # the batch, then each row alone
    assert isinstance(results[WAITING], IntegrityError)
    assert all(isinstance(results[n], WorkflowRun) for n in range(WAITING))
    written = set(WorkflowRun.objects.exclude(id=taken.id).values_list("id", flat=True))
    assert written == {results[n].id for n in range(WAITING)}


def test_a_run_in_a_transaction_is_never_carried_by_another_calls_commit(monkeypatch):
    """With another call's INSERT under way, a run written inside a transaction does not wait to join it:
    it is written in its own transaction, and rolled back with it."""
    workflow = marking_workflow("apart")
    release = threading.Event()
    calls = _held_first_insert(monkeypatch, release)
    results: dict = {}
    leader = _in_thread(_enqueue(workflow, 0), results, 0)
    _until(lambda: calls)
    try:
        with transaction.atomic():
            inside = _enqueue(workflow, 1)()  # would wait for `release` if it joined the batch
            assert WorkflowRun.objects.filter(id=inside.id).exists()
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    release.set()
    _join([leader])

    assert not WorkflowRun.objects.filter(id=inside.id).exists()
    assert list(WorkflowRun.objects.values_list("id", flat=True)) == [results[0].id]
    assert connection.in_atomic_block is False


@pytest.mark.parametrize(("lose_batch", "rows_alone"), [("after", 0), ("before", WAITING)])
def test_a_batch_whose_connection_died_gives_every_call_its_run_once(monkeypatch, lose_batch, rows_alone):
    """The connection dies after the batch's INSERT committed (its rows are there: written) or before it
    reached the database (none is: each call writes its own): every call gets its run, none twice."""
    release = threading.Event()
    calls = _held_first_insert(monkeypatch, release, lose_batch=lose_batch)
    results: dict = {}
    threads = _one_then_waiting(marking_workflow(f"lost_{lose_batch}"), calls, results, WAITING)
    release.set()
    _join(threads)

    assert calls == [1, WAITING] + [1] * rows_alone
    assert all(isinstance(results[n], WorkflowRun) for n in range(WAITING + 1))
    assert WorkflowRun.objects.count() == WAITING + 1
    assert set(WorkflowRun.objects.values_list("id", flat=True)) == {results[n].id for n in range(WAITING + 1)}


def test_a_call_writing_alone_gets_its_own_error_and_leaves_the_group_idle():
    """With no other call under way, a run the database refuses fails its call, and the next call writes."""
    workflow = marking_workflow("alone")
    taken = _enqueue(workflow, 0)()
    with pytest.raises(IntegrityError):
        _enqueue(workflow, 1, run_id=taken.id)()
    assert runs._run_inserts._busy is False
    assert WorkflowRun.objects.filter(id=_enqueue(workflow, 2)().id).exists()
