"""GET /healthz: the database, Redis, a worker's and beat's heartbeats; 200 when all are fine, else 503.

Public and minimal on purpose (a load balancer or uptime checker calls it without credentials): it
says which check fails and how old the heartbeats are, never an error message, host or version.
`?scope=web` checks only what the web process needs to answer calls (the database: Redis is used
fail-open), for a container or load-balancer health check that must not restart the web tier
because a worker is down.
"""
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .heartbeat import heartbeat_ages

logger = logging.getLogger(__name__)


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.warning("Health check: the database is unavailable", exc_info=True)
        return False


def redis_ok() -> bool | None:
    """True or False for the Redis cache; None when this deployment runs without Redis."""
    if not settings.REDIS_AVAILABLE:
        return None
    try:
        cache.set("healthz", 1, 10)
        return cache.get("healthz") == 1
    except Exception:
        logger.warning("Health check: Redis is unavailable", exc_info=True)
        return False


def checks() -> dict:
    """Every check's verdict ("ok", "fail", "stale", "missing", "off") and the heartbeats' ages."""
    results = {"database": "ok" if database_ok() else "fail"}
    redis = redis_ok()
    results["redis"] = "off" if redis is None else "ok" if redis else "fail"
    ages: dict = {}
    if redis is not False:
        try:
            ages = heartbeat_ages()
        except Exception:
            logger.warning("Health check: heartbeats unreadable", exc_info=True)
    stale = settings.ENGINE_ROOM_HEARTBEAT_STALE_SECONDS
    beat_age = ages.get("beat")
    worker_ages = [age for name, age in ages.items() if name.startswith("worker:") and age is not None]
    worker_age = min(worker_ages) if worker_ages else None
    for name, age in (("worker", worker_age), ("beat", beat_age)):
        results[name] = "missing" if age is None else "ok" if age <= stale else "stale"
    return {"checks": results, "heartbeat_age_seconds": {
        name: None if age is None else round(age, 1) for name, age in ages.items()
    }}


def healthy(results: dict) -> bool:
    return all(verdict in ("ok", "off") for verdict in results.values())


@never_cache
@login_not_required
@require_GET
def healthz(request):
    """Health of the whole deployment, or of the web tier alone with ?scope=web."""
    if request.GET.get("scope") == "web":
        ok = database_ok()
        return JsonResponse({"status": "ok" if ok else "fail", "checks": {"database": "ok" if ok else "fail"}},
                            status=200 if ok else 503)
    report = checks()
    ok = healthy(report["checks"])
    response = JsonResponse({"status": "ok" if ok else "fail", **report}, status=200 if ok else 503)
    if not ok:
        response["Retry-After"] = "10"
    return response
