"""Retention: old runs are rolled into daily aggregates, then deleted in batches; nothing else is touched."""
import collections
import sqlite3

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from logs.models import RunDailyStat, StepRun, WorkflowRun
from logs.services import runs_prune, sqlite_vacuum_if_fragmented

from .conftest import MISSING_INVOICE, SET_VALUES, age

pytestmark = pytest.mark.django_db


@pytest.fixture
def workflows(make_workflow, invoices):
    return make_workflow("good", steps=[SET_VALUES]), make_workflow("bad", steps=[SET_VALUES, MISSING_INVOICE])


def test_pruning_removes_only_old_finished_runs_and_keeps_their_aggregates(workflows, start_run, settings):
    settings.LOG_RETENTION_DAYS = 14
    good, bad = workflows
    old = [age(start_run(good), days=20), age(start_run(good), days=20), age(start_run(bad), days=15)]
    stuck = age(start_run(good, execute=False), days=30)  # still queued: never pruned, however old
    recent = [start_run(good), age(start_run(bad), days=13)]

    result = runs_prune(batch_size=2)

    assert result.deleted == 3 and result.batches == 2 and not result.more
    assert set(WorkflowRun.objects.values_list("id", flat=True)) == {stuck.id, *(run.id for run in recent)}
    assert not StepRun.objects.filter(run_id__in=[run.id for run in old]).exists()
    stats = {(stat.day, stat.workflow_name): stat for stat in RunDailyStat.objects.all()}
    good_day = stats[(old[0].created.date(), "good")]
    assert (good_day.succeeded, good_day.failed, good_day.runs) == (2, 0, 2)
    assert good_day.wu == pytest.approx(old[0].wu + old[1].wu)
    assert good_day.duration_count == 2
    assert good_day.duration_sum_ms == pytest.approx(old[0].duration_ms + old[1].duration_ms)
    assert good_day.duration_max_ms == pytest.approx(max(old[0].duration_ms, old[1].duration_ms))
    assert sum(good_day.duration_histogram) == 2
    bad_day = stats[(old[2].created.date(), "bad")]
    assert (bad_day.failed, bad_day.wu) == (1, pytest.approx(old[2].wu))

    # A second pass finds nothing more and changes no aggregate.
    assert runs_prune().deleted == 0
    assert RunDailyStat.objects.get(pk=good_day.pk).succeeded == 2


def test_runs_beyond_the_maximum_count_go_even_when_recent(workflows, start_run, settings):
    settings.LOG_RETENTION_MAX_RUNS = 3
    good, _ = workflows
    runs = [age(start_run(good), hours=10 - index) for index in range(5)]
    assert runs_prune().deleted == 2
    assert list(WorkflowRun.objects.order_by("created").values_list("id", flat=True)) == [run.id for run in runs[2:]]
    # The two pruned runs (10 and 9 hours old) are rolled into their own UTC days: before 10:00 UTC that is two.
    pruned_days = collections.Counter(run.created.date() for run in runs[:2])
    assert {stat.day: stat.succeeded for stat in RunDailyStat.objects.all()} == pruned_days


def test_a_deleted_parent_leaves_its_children_in_place(make_workflow, start_run, settings):
    settings.LOG_RETENTION_DAYS = 14
    make_workflow("leaf", steps=[SET_VALUES])
    parent = start_run(make_workflow("top", steps=[
        {"key": "call", "action": "run_workflow", "config": {"workflow": "leaf", "params": {}}}]))
    child = WorkflowRun.objects.get(workflow_name="leaf")
    age(parent, days=20)
    assert runs_prune().deleted == 1
    child.refresh_from_db()
    assert child.parent_run_id is None and child.root_run_id is None


def test_a_pass_stops_at_its_time_limit_and_says_there_is_more(workflows, start_run, settings):
    settings.LOG_RETENTION_DAYS = 1
    good, _ = workflows
    for _ in range(3):
        age(start_run(good), days=2)
    result = runs_prune(batch_size=1, pass_seconds=0)
    assert (result.deleted, result.more) == (1, True)
    assert WorkflowRun.objects.count() == 2


def test_a_batch_costs_the_same_statements_for_5_runs_as_for_25(workflows, start_run, settings):
    settings.LOG_RETENTION_DAYS = 1
    good, _ = workflows

    def statements_to_prune(count: int, days: int) -> int:
        for _ in range(count):
            age(start_run(good), days=days)
        with CaptureQueriesContext(connection) as queries:
            assert runs_prune(batch_size=100).deleted == count
        return len(queries.captured_queries)

    # Set-based: a lock-and-select, the rows, the day's aggregate, the deletes — not a statement per run.
    assert statements_to_prune(5, days=2) == statements_to_prune(25, days=3)


def test_the_prune_task_runs_on_beat():
    entry = django_settings.CELERY_BEAT_SCHEDULE["engine-room-prune-logs"]
    assert entry["task"] == "logs.tasks.runs_prune"
    from logs.tasks import runs_prune as task

    assert task.name == entry["task"]


def test_sqlite_is_vacuumed_once_enough_of_it_is_free(tmp_path):
    path = tmp_path / "runs.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE run (id INTEGER PRIMARY KEY, body TEXT)")
    db.executemany("INSERT INTO run (body) VALUES (?)", [("x" * 2000,) for _ in range(2000)])
    full = path.stat().st_size
    cursor = db.cursor()
    assert sqlite_vacuum_if_fragmented(cursor) is False  # nothing free yet
    db.execute("DELETE FROM run WHERE id > 200")
    assert path.stat().st_size == full  # deleting alone does not shrink the file
    assert sqlite_vacuum_if_fragmented(cursor) is True
    assert path.stat().st_size < full / 5
    db.close()


def test_by_default_runs_are_kept_for_14_days(workflows, start_run):
    good, _ = workflows
    kept = age(start_run(good), days=13, hours=23)
    age(start_run(good), days=14, hours=1)
    assert runs_prune().deleted == 1
    assert list(WorkflowRun.objects.values_list("id", flat=True)) == [kept.id]


def test_the_task_drains_a_backlog_pass_after_pass(workflows, start_run, settings, eager_tasks):
    from logs.tasks import runs_prune as task

    settings.LOG_RETENTION_DAYS, settings.LOG_RETENTION_BATCH_SIZE, settings.LOG_RETENTION_PASS_SECONDS = 1, 1, 0
    good, _ = workflows
    for _ in range(3):
        age(start_run(good), days=2)
    # Each pass stops after its first batch and sends the next one (run at once here).
    assert task()["more"] is True
    assert not WorkflowRun.objects.exists()
    assert RunDailyStat.objects.get().succeeded == 3
