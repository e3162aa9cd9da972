"""Writes of the logs app: retention (roll up into daily aggregates, then delete) and failure-alert claims."""
import bisect
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .models import DURATION_BUCKETS_MS, FINISHED_STATUSES, FailureAlert, RunDailyStat, WorkflowRun

logger = logging.getLogger(__name__)


@dataclass
class PruneResult:
    """What one prune pass did; `more` when it stopped at its time limit with runs still to prune."""

    deleted: int = 0
    batches: int = 0
    more: bool = False
    vacuumed: bool = False


def duration_bucket(duration_ms: float) -> int:
    """Index of the histogram bucket a duration falls in (DURATION_BUCKETS_MS are upper bounds)."""
    return bisect.bisect_left(DURATION_BUCKETS_MS, duration_ms)


def run_daily_stats_add(*, rows) -> int:
    """Add runs (dicts with created, workflow_name, status, wu, duration_ms) to their day's aggregates."""
    groups: dict = defaultdict(list)
    for row in rows:
        day = row["created"].astimezone(timezone.UTC).date()
        groups[(day, row["workflow_name"])].append(row)
    for (day, workflow_name), runs in sorted(groups.items()):
        # Locked, so that two prune passes adding to the same day and workflow both count.
        stat, _ = RunDailyStat.objects.select_for_update().get_or_create(day=day, workflow_name=workflow_name)
        histogram = list(stat.duration_histogram)
        for run in runs:
            if run["status"] in ("succeeded", "terminated", "failed", "cancelled", "skipped"):
                setattr(stat, run["status"], getattr(stat, run["status"]) + 1)
            stat.wu += run["wu"] or 0
            duration = run["duration_ms"]
            if duration is not None:
                stat.duration_count += 1
                stat.duration_sum_ms += duration
                stat.duration_max_ms = max(stat.duration_max_ms, duration)
                histogram[duration_bucket(duration)] += 1
        stat.duration_histogram = histogram
        stat.save()
    return len(groups)


def prune_condition(*, now: datetime | None = None) -> Q | None:
    """Which runs retention removes: older than LOG_RETENTION_DAYS, or beyond the newest LOG_RETENTION_MAX_RUNS."""
    now = now or timezone.now()
    condition = Q(created__lt=now - timedelta(days=settings.LOG_RETENTION_DAYS))
    limit = settings.LOG_RETENTION_MAX_RUNS
    if limit:
        # The newest run that falls outside the count (one index step per kept run, no COUNT).
        edge = WorkflowRun.objects.order_by("-created", "-id").values_list("created", "id")[limit : limit + 1].first()
        if edge is not None:
            created, run_id = edge
            condition |= Q(created__lt=created) | Q(created=created, id__lte=run_id)
    return condition


def runs_prune(*, now: datetime | None = None, batch_size: int | None = None,
               pass_seconds: float | None = None) -> PruneResult:
    """Roll finished runs past retention into daily aggregates and delete them (with their steps), in batches.

    Queued and running runs are never touched, however old. Each batch is one transaction: its rows
    are locked (skipped by a concurrent pass), added to the aggregates and deleted together, so the
    charts count every run exactly once, before or after its deletion.
    """
    batch_size = batch_size or settings.LOG_RETENTION_BATCH_SIZE
    deadline = time.monotonic() + (pass_seconds if pass_seconds is not None else settings.LOG_RETENTION_PASS_SECONDS)
    condition = prune_condition(now=now)
    result = PruneResult()
    while True:
        with transaction.atomic():
            ids = list(
                WorkflowRun.objects.select_for_update(skip_locked=True)
                .filter(condition, status__in=FINISHED_STATUSES)
                .order_by("created")
                .values_list("id", flat=True)[:batch_size]
            )
            if not ids:
                break
            rows = WorkflowRun.objects.filter(id__in=ids).values("created", "workflow_name", "status", "wu", "duration_ms")
            run_daily_stats_add(rows=rows)
            # Steps go in one DELETE (cascade); other references (children, scheduler rows) are SET_NULL.
            # only("id"): deleting needs the keys, not a batch of webhook bodies read into memory.
            WorkflowRun.objects.filter(id__in=ids).only("id").delete()
        result.deleted += len(ids)
        result.batches += 1
        if len(ids) < batch_size:
            break
        if time.monotonic() > deadline:
            result.more = True
            break
    if result.deleted and connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            result.vacuumed = sqlite_vacuum_if_fragmented(cursor)
    if result.deleted:
        logger.info("Log retention deleted %d runs in %d batches", result.deleted, result.batches)
    return result


def sqlite_vacuum_if_fragmented(cursor, *, free_ratio: float = 0.25) -> bool:
    """VACUUM an SQLite database when more than `free_ratio` of its pages are free (deleted rows).

    Deleting rows leaves free pages inside the file; VACUUM gives them back to the filesystem, so the
    file shrinks with retention instead of staying at its largest size. It rewrites the file, hence
    only when enough is free.
    """
    cursor.execute("PRAGMA page_count")
    pages = cursor.fetchone()[0]
    cursor.execute("PRAGMA freelist_count")
    free = cursor.fetchone()[0]
    if not pages or free / pages < free_ratio:
        return False
    cursor.execute("VACUUM")
    return True


def failure_alert_claim(*, workflow_name: str, run_id, now: datetime | None = None) -> bool:
    """Take this period's alert for a workflow: True for exactly one caller per LOG_ALERT_PERIOD_SECONDS.

    A conditional UPDATE (or the INSERT of the first row, under the unique name) decides, so two
    workers whose runs fail at the same moment cannot both send.
    """
    now = now or timezone.now()
    period_start = now - timedelta(seconds=settings.LOG_ALERT_PERIOD_SECONDS)
    if FailureAlert.objects.filter(workflow_name=workflow_name, last_sent_at__lte=period_start).update(
        last_sent_at=now, last_run_id=run_id
    ):
        return True
    if FailureAlert.objects.filter(workflow_name=workflow_name).exists():
        return False
    try:
        with transaction.atomic():
            FailureAlert.objects.create(workflow_name=workflow_name, last_sent_at=now, last_run_id=run_id)
    except IntegrityError:  # another worker inserted it first: its alert covers this failure
        return False
    return True
