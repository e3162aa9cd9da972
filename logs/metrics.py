"""The dashboard's numbers: runs per hour, failure rates, duration percentiles, slow steps and WU.

Recent figures come from the stored runs; days that retention has pruned come from RunDailyStat, so
the per-day charts reach further back than the runs do. Everything is in UTC.
"""
import math
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from .budget import month_bounds, wu_budget_status
from .models import DURATION_BUCKETS_MS, RunDailyStat, RunStatus, StepRun, WorkflowRun

STATUSES = [status.value for status in RunStatus]
# Finished in a way that counts towards the failure rate (cancelled and skipped runs do not).
RATED = ("succeeded", "terminated", "failed")
DAYS = 30
TOP_WORKFLOWS = 8
SLOWEST_STEPS = 10


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont(p) WITHIN GROUP (ORDER BY expression)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, percentile: float, **extra):
        super().__init__(expression, percentile=float(percentile), **extra)


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear-interpolated percentile, as percentile_cont computes it."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def histogram_percentile(histogram: list[int], fraction: float, maximum: float) -> float | None:
    """A percentile read from a RunDailyStat histogram: the upper bound of the bucket it falls in."""
    total = sum(histogram)
    if not total:
        return None
    rank, seen = fraction * total, 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            return min(DURATION_BUCKETS_MS[index], maximum) if index < len(DURATION_BUCKETS_MS) else maximum
    return maximum


def _rate(failed: int, rated: int) -> float | None:
    return round(failed / rated, 4) if rated else None


def runs_per_hour(*, now: datetime, hours: int = 24) -> dict:
    """Runs created in each of the last `hours` hours, by status."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    labels = [start + timedelta(hours=i) for i in range(hours)]
    series = {status: [0] * hours for status in STATUSES}
    rows = (
        WorkflowRun.objects.filter(created__gte=start, created__lt=end)
        .annotate(hour=TruncHour("created", tzinfo=timezone.UTC))
        .values("hour", "status")
        .annotate(runs=Count("id"))
        .order_by()
    )
    for row in rows:
        index = int((row["hour"] - start).total_seconds() // 3600)
        if 0 <= index < hours:
            series[row["status"]][index] += row["runs"]
    return {"labels": [label.isoformat() for label in labels], "statuses": series}


def workflow_stats(*, since: datetime) -> list[dict]:
    """Per workflow since `since`: runs, failures, failure rate, p50/p95 duration and WU."""
    runs = WorkflowRun.objects.filter(created__gte=since).order_by()
    stats = runs.values("workflow_name").annotate(
        runs=Count("id"),
        failed=Count("id", filter=Q(status=RunStatus.FAILED)),
        rated=Count("id", filter=Q(status__in=RATED)),
        wu=Sum("wu"),
    )
    if connection.vendor == "postgresql":
        percentiles = {
            row["workflow_name"]: (row["p50"], row["p95"])
            for row in runs.filter(duration_ms__isnull=False).values("workflow_name").annotate(
                p50=Percentile("duration_ms", 0.5), p95=Percentile("duration_ms", 0.95)
            )
        }
    else:  # SQLite has no percentile aggregate; its deployments are small enough to sort in Python
        durations = defaultdict(list)
        for name, duration in runs.filter(duration_ms__isnull=False).values_list("workflow_name", "duration_ms"):
            durations[name].append(duration)
        percentiles = {name: (percentile(values, 0.5), percentile(values, 0.95)) for name, values in durations.items()}
    result = []
    for row in stats:
        p50, p95 = percentiles.get(row["workflow_name"], (None, None))
        result.append({
            "name": row["workflow_name"],
            "runs": row["runs"],
            "failed": row["failed"],
            "failure_rate": _rate(row["failed"], row["rated"]),
            "p50_ms": round(p50, 1) if p50 is not None else None,
            "p95_ms": round(p95, 1) if p95 is not None else None,
            "wu": round(row["wu"] or 0, 3),
        })
    return sorted(result, key=lambda item: (-(item["p95_ms"] or 0), item["name"]))


def slowest_steps(*, since: datetime, limit: int = SLOWEST_STEPS) -> list[dict]:
    """The longest step attempts since `since`."""
    steps = (
        StepRun.objects.filter(started_at__gte=since)
        .exclude(status="skipped")  # a skipped step only evaluated its condition
        .order_by("-duration_ms")
        .values("run_id", "run__workflow_name", "index", "key", "action", "status", "duration_ms", "started_at")[:limit]
    )
    return [
        {
            "run_id": str(step["run_id"]),
            "workflow": step["run__workflow_name"],
            "step": f"{step['index'] + 1}. {step['key']}",
            "action": step["action"],
            "status": step["status"],
            "duration_ms": round(step["duration_ms"], 1),
            "started_at": step["started_at"].isoformat(),
        }
        for step in steps
    ]


def daily_totals(*, start_day, end_day) -> list[dict]:
    """Per day and workflow in [start_day, end_day]: runs by status and WU, stored runs plus aggregates."""
    cells: dict = defaultdict(lambda: {"wu": 0.0, **{status: 0 for status in STATUSES}})
    start = datetime.combine(start_day, datetime.min.time(), tzinfo=timezone.UTC)
    end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.UTC)
    live = (
        WorkflowRun.objects.filter(created__gte=start, created__lt=end)
        .annotate(day=TruncDate("created", tzinfo=timezone.UTC))
        .values("day", "workflow_name", "status")
        .annotate(runs=Count("id"), wu=Sum("wu"))
        .order_by()
    )
    for row in live:
        cell = cells[(row["day"], row["workflow_name"])]
        cell[row["status"]] += row["runs"]
        cell["wu"] += row["wu"] or 0
    for stat in RunDailyStat.objects.filter(day__gte=start_day, day__lte=end_day):
        cell = cells[(stat.day, stat.workflow_name)]
        for status in ("succeeded", "terminated", "failed", "cancelled", "skipped"):
            cell[status] += getattr(stat, status)
        cell["wu"] += stat.wu
    return [{"day": day, "workflow": name, **cell} for (day, name), cell in sorted(cells.items())]


def per_day(*, now: datetime, days: int = DAYS) -> dict:
    """Runs per day by status (with the failure rate) and WU per day by workflow, for the last `days` days."""
    today = now.astimezone(timezone.UTC).date()
    month_start = month_bounds(now)[0].date()
    start_day = min(today - timedelta(days=days - 1), month_start)
    rows = daily_totals(start_day=start_day, end_day=today)
    labels = [today - timedelta(days=days - 1 - i) for i in range(days)]
    index = {day: i for i, day in enumerate(labels)}
    statuses = {status: [0] * days for status in STATUSES}
    wu_by_workflow: dict = defaultdict(lambda: [0.0] * days)
    wu_month: dict = defaultdict(float)
    for row in rows:
        if row["day"] >= month_start:
            wu_month[row["workflow"]] += row["wu"]
        i = index.get(row["day"])
        if i is None:
            continue
        for status in STATUSES:
            statuses[status][i] += row[status]
        wu_by_workflow[row["workflow"]][i] += row["wu"]
    failure_rate = [
        _rate(statuses["failed"][i], sum(statuses[s][i] for s in RATED)) for i in range(days)
    ]
    # The biggest spenders get their own colour; the rest share "other", so the chart stays legible.
    ranked = sorted(wu_by_workflow, key=lambda name: -sum(wu_by_workflow[name]))
    wu_series = {name: [round(v, 3) for v in wu_by_workflow[name]] for name in ranked[:TOP_WORKFLOWS]}
    if len(ranked) > TOP_WORKFLOWS:
        wu_series["other"] = [
            round(sum(wu_by_workflow[name][i] for name in ranked[TOP_WORKFLOWS:]), 3) for i in range(days)
        ]
    return {
        "labels": [day.isoformat() for day in labels],
        "statuses": statuses,
        "failure_rate": failure_rate,
        "wu": wu_series,
        "wu_total": [round(sum(wu_by_workflow[name][i] for name in wu_by_workflow), 3) for i in range(days)],
        "wu_month": sorted(
            ({"name": name, "wu": round(value, 3)} for name, value in wu_month.items()), key=lambda item: -item["wu"]
        ),
    }


def recent_failures(*, limit: int = 5) -> list[dict]:
    runs = (
        WorkflowRun.objects.filter(status=RunStatus.FAILED)
        .order_by("-created")
        .values("id", "workflow_name", "trigger", "error_code", "error", "created")[:limit]
    )
    return [{**run, "id": str(run["id"])} for run in runs]


def dashboard_data(*, now: datetime | None = None) -> dict:
    """Everything the dashboard draws, as JSON-ready values."""
    now = now or timezone.now()
    day_ago = now - timedelta(hours=24)
    hours = runs_per_hour(now=now)
    totals = {status: sum(counts) for status, counts in hours["statuses"].items()}
    rated = sum(totals[status] for status in RATED)
    workflows = workflow_stats(since=day_ago)
    days = per_day(now=now)
    budget = wu_budget_status()
    return {
        "generated_at": now.isoformat(),
        "hours": hours,
        "last_24h": {
            "runs": sum(totals.values()),
            "failed": totals["failed"],
            "in_flight": totals["queued"] + totals["running"],
            "failure_rate": _rate(totals["failed"], rated),
            "wu": round(sum(item["wu"] for item in workflows), 3),
        },
        "workflows": workflows,
        "slowest_steps": slowest_steps(since=day_ago),
        "days": days,
        "wu_month_total": round(sum(item["wu"] for item in days["wu_month"]), 3),
        "budget": None if budget is None else {
            "budget": budget.budget, "used": round(budget.used, 3), "percent": budget.percent,
            "enforced": budget.enforced, "warning": budget.warning, "exceeded": budget.exceeded,
            "message": budget.message,
        },
        "recent_failures": recent_failures(),
    }


def dashboard_data_cached() -> dict:
    """dashboard_data, shared by every viewer for LOG_DASHBOARD_CACHE_SECONDS (a cache that is down: computed)."""
    seconds = settings.LOG_DASHBOARD_CACHE_SECONDS
    if not seconds:
        return dashboard_data()
    key = "logs:dashboard:v1"
    try:
        cached = cache.get(key)
    except Exception:  # caches fail open (DESIGN.md)
        cached = None
    if cached is not None:
        return cached
    data = dashboard_data()
    try:
        cache.set(key, data, seconds)
    except Exception:
        pass
    return data


__all__ = ["dashboard_data", "dashboard_data_cached"]
