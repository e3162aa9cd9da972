"""GET /metrics: Prometheus text format — runs by status, queue depths, step durations, health.

Every figure is read from the database, Redis or the heartbeats at scrape time with indexed, bounded
queries (the recent-window ones over the last ENGINE_ROOM_METRICS_WINDOW_SECONDS), and the page is
cached for a few seconds so that several scrapers cost one computation. The windowed figures are
gauges, not counters: the app keeps no process-wide counters to feed `rate()`.

Access: `Authorization: Bearer <ENGINE_ROOM_METRICS_TOKEN>` (Prometheus' `authorization` setting),
an admin API token, or a signed-in admin; anyone else gets a 401.
"""
import hmac
import logging
import time
from collections import defaultdict
from datetime import timedelta

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Sum
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from config.exception_handler import error_body

from .health import checks

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CACHE_KEY = "metrics:page"
QUANTILES = (0.5, 0.95, 0.99)
# kombu's Redis transport keeps a queue's priority levels in lists named "<queue>\x06\x16<priority>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class _Page:
    """Lines of the exposition format, each metric with its HELP and TYPE once."""

    def __init__(self):
        self.lines: list[str] = []

    def metric(self, name: str, help_text: str, samples, kind: str = "gauge") -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            label_text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
            shown = "NaN" if value is None else repr(float(value)) if isinstance(value, float) else str(value)
            self.lines.append(f"{name}{{{label_text}}} {shown}" if label_text else f"{name} {shown}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def authorized(request) -> bool:
    """The metrics token, an admin API token, or a signed-in admin."""
    from api_endpoints.authentication import presented_token, request_token
    from api_endpoints.permissions import ADMIN, role_at_least, user_role

    presented = presented_token(request)
    expected = settings.ENGINE_ROOM_METRICS_TOKEN
    if presented and expected and hmac.compare_digest(presented.encode(), expected.encode()):
        return True
    if presented:
        _, token = request_token(request)
        return token is not None and token.admin
    return role_at_least(user_role(request.user), ADMIN)


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each Celery queue (Redis broker only; None when it cannot be read)."""
    names = {kind: f"{settings.QUEUE_PREFIX}{kind}" for kind in ("interactive", "default", "bulk")}
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return dict.fromkeys(names)
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
        with client.pipeline(transaction=False) as pipe:
            for name in names.values():
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(name + suffix)
            lengths = pipe.execute()
        client.close()
    except redis.RedisError:
        logger.warning("Metrics: the broker's queues are unreadable", exc_info=True)
        return dict.fromkeys(names)
    per_queue = len(_PRIORITY_SUFFIXES)
    return {kind: sum(lengths[i * per_queue:(i + 1) * per_queue]) for i, kind in enumerate(names)}


def _step_quantiles(steps) -> dict[str, dict[float, float | None]]:
    from logs.metrics import Percentile, percentile

    if connection.vendor == "postgresql":
        annotations = {f"q{index}": Percentile("duration_ms", q) for index, q in enumerate(QUANTILES)}
        return {
            row["action"]: {q: row[f"q{index}"] for index, q in enumerate(QUANTILES)}
            for row in steps.values("action").annotate(**annotations).order_by()
        }
    durations = defaultdict(list)
    # SQLite has no percentile aggregate; a bounded sample keeps the scrape cheap.
    for action, duration in steps.values_list("action", "duration_ms")[:20_000]:
        durations[action].append(duration)
    return {action: {q: percentile(values, q) for q in QUANTILES} for action, values in durations.items()}


def render_metrics() -> str:
    """The whole exposition, computed now."""
    from logs.models import RunStatus, StepRun, WorkflowRun
    from scheduler.models import ScheduledRun, ScheduledRunStatus
    from workflows.selectors import runs_stale_q

    now = timezone.now()
    window = timedelta(seconds=settings.ENGINE_ROOM_METRICS_WINDOW_SECONDS)
    since = now - window
    page = _Page()

    health = checks()
    page.metric("engine_room_up", "1 when the check passes (database, redis, worker, beat), else 0.",
                [({"check": name}, int(verdict in ("ok", "off"))) for name, verdict in health["checks"].items()])
    page.metric("engine_room_heartbeat_age_seconds", "Seconds since beat's and each queue's worker heartbeat.",
                [({"component": name}, age) for name, age in health["heartbeat_age_seconds"].items()
                 if age is not None])

    active = dict(
        WorkflowRun.objects.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING))
        .values_list("status").annotate(n=Count("id")).order_by()
    )
    page.metric("engine_room_runs", "Runs waiting or running now, by status.",
                [({"status": status}, active.get(status, 0)) for status in (RunStatus.QUEUED, RunStatus.RUNNING)])
    overdue = WorkflowRun.objects.filter(runs_stale_q(now)).count()
    expired = WorkflowRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).count()
    page.metric("engine_room_runs_needing_sweep",
                "Runs the sweeper resends: queued past the threshold (overdue) or running on an expired lease.",
                [({"reason": "overdue"}, overdue), ({"reason": "lease_expired"}, expired)])
    recent = dict(
        WorkflowRun.objects.filter(created__gte=since).values_list("status").annotate(n=Count("id")).order_by()
    )
    page.metric("engine_room_runs_recent", "Runs created in the window, by their status now.",
                [({"status": status.value}, recent.get(status.value, 0)) for status in RunStatus])
    recent_wu = WorkflowRun.objects.filter(created__gte=since).aggregate(wu=Sum("wu"))["wu"] or 0.0
    page.metric("engine_room_wu_recent", "Workload units of the runs created in the window.", [({}, float(recent_wu))])
    due = ScheduledRun.objects.filter(status=ScheduledRunStatus.PENDING, due_at__lte=now).count()
    page.metric("engine_room_scheduled_runs_due", "Scheduled runs past their due time, not yet dispatched.",
                [({}, due)])
    page.metric("engine_room_queue_depth", "Messages waiting in each Celery queue.",
                [({"queue": kind}, depth) for kind, depth in queue_depths().items()])

    steps = StepRun.objects.filter(started_at__gte=since)
    counts = steps.values_list("action", "status").annotate(n=Count("id"), total=Sum("duration_ms")).order_by()
    page.metric("engine_room_steps_recent", "Step attempts started in the window, by action and status.",
                [({"action": action, "status": status}, n) for action, status, n, _ in counts])
    totals = defaultdict(float)
    for action, _, _, total in counts:
        totals[action] += (total or 0.0) / 1000
    page.metric("engine_room_step_duration_seconds_sum_recent", "Total step time in the window, by action.",
                [({"action": action}, round(total, 6)) for action, total in sorted(totals.items())])
    quantiles = _step_quantiles(steps)
    page.metric("engine_room_step_duration_seconds", "Step duration quantiles in the window, by action.", [
        ({"action": action, "quantile": str(q)}, None if value is None else round(value / 1000, 6))
        for action, values in sorted(quantiles.items()) for q, value in values.items()
    ])
    page.metric("engine_room_metrics_window_seconds", "The window of the *_recent figures.",
                [({}, settings.ENGINE_ROOM_METRICS_WINDOW_SECONDS)])
    return page.text()


@csrf_exempt
@never_cache
@login_not_required
@require_GET
def metrics(request):
    """The exposition, cached for ENGINE_ROOM_METRICS_CACHE_SECONDS, to authorized scrapers only."""
    if not authorized(request):
        response = JsonResponse(error_body("unauthorized", "Metrics need the metrics token or an admin token."),
                                status=401)
        response["WWW-Authenticate"] = 'Bearer realm="engine-room-metrics"'
        return response
    text = None
    ttl = settings.ENGINE_ROOM_METRICS_CACHE_SECONDS
    try:
        text = cache.get(CACHE_KEY) if ttl else None
    except Exception:  # the cache down: compute every time (fail open, like the rest of the app)
        pass
    if text is None:
        started = time.perf_counter()
        text = render_metrics()
        text += (
            "# HELP engine_room_metrics_render_seconds How long computing this page took.\n"
            "# TYPE engine_room_metrics_render_seconds gauge\n"
            f"engine_room_metrics_render_seconds {time.perf_counter() - started:.6f}\n"
        )
        try:
            if ttl:
                cache.set(CACHE_KEY, text, ttl)
        except Exception:
            pass
    return HttpResponse(text, content_type=CONTENT_TYPE)
