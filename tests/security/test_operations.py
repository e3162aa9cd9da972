"""Operations endpoints: /healthz (public, minimal) and /metrics (Prometheus text, token only)."""
import re
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.test import Client
from django.utils import timezone

from config import heartbeat
from logs.models import StepRun, WorkflowRun
from workflows.services import run_enqueue
from workflows.services.runs import dispatch

from .conftest import bearer

pytestmark = pytest.mark.django_db

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
                    r'(-?[0-9.e+-]+|NaN|\+Inf|-Inf)$')


@pytest.fixture(autouse=True)
def _no_heartbeats(settings):
    settings.ENGINE_ROOM_METRICS_CACHE_SECONDS = 0
    cache.clear()
    yield
    try:
        cache.clear()
    except Exception:  # a test pointed the cache at a closed port; the settings fixture puts it back
        pass


def beat_and_workers_alive(age: float = 0.0):
    now = time.time() - age
    cache.set(heartbeat.BEAT_KEY, now)
    for kind in heartbeat.QUEUE_KINDS:
        cache.set(heartbeat.worker_key(kind), now)


def test_healthz_says_which_part_is_down_and_nothing_more():
    missing = Client().get("/healthz")
    assert missing.status_code == 503 and missing["Retry-After"]
    body = missing.json()
    assert body["status"] == "fail"
    assert body["checks"] == {"database": "ok", "redis": "ok", "worker": "missing", "beat": "missing"}
    assert set(body) == {"status", "checks", "heartbeat_age_seconds"}

    beat_and_workers_alive()
    healthy = Client().get("/healthz/")
    assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
    assert healthy["Cache-Control"].startswith("max-age=0")

    beat_and_workers_alive(age=120)
    stale = Client().get("/healthz").json()
    assert stale["checks"]["worker"] == stale["checks"]["beat"] == "stale"
    assert stale["heartbeat_age_seconds"]["beat"] >= 120


def test_one_queue_served_is_enough_for_the_worker_check():
    cache.set(heartbeat.BEAT_KEY, time.time())
    heartbeat.worker_heartbeat("interactive")
    assert Client().get("/healthz").json()["checks"]["worker"] == "ok"


def test_beat_writes_its_heartbeat_when_it_sends_tasks_and_no_one_else_does(monkeypatch):
    monkeypatch.setattr(heartbeat._BeatState, "is_beat", False)
    heartbeat._beat_publishing(sender="anything")
    assert cache.get(heartbeat.BEAT_KEY) is None
    monkeypatch.setattr(heartbeat._BeatState, "is_beat", True)
    monkeypatch.setattr(heartbeat._BeatState, "last_write", 0.0)
    heartbeat._beat_publishing(sender="scheduler.tasks.scheduler_dispatch")
    assert time.time() - cache.get(heartbeat.BEAT_KEY) < 5


def test_healthz_with_the_database_down(monkeypatch):
    beat_and_workers_alive()

    def broken(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("config.health.connection.cursor", broken)
    full, web = Client().get("/healthz"), Client().get("/healthz?scope=web")
    assert full.status_code == web.status_code == 503
    assert full.json()["checks"]["database"] == "fail" and web.json() == {"status": "fail",
                                                                         "checks": {"database": "fail"}}
    assert "connection refused" not in full.content.decode()


def test_healthz_with_redis_down_answers_fast(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.3}}}
    started = time.monotonic()
    body = Client().get("/healthz").json()
    assert time.monotonic() - started < 5
    assert body["checks"]["redis"] == "fail" and body["checks"]["database"] == "ok"
    assert Client().get("/healthz?scope=web").status_code == 200


# --- /metrics -----------------------------------------------------------------------------------------


def test_metrics_need_the_metrics_token_or_an_admin(settings, admin_token, make_token, make_user, make_workflow):
    settings.ENGINE_ROOM_METRICS_TOKEN = "scrape-me-0123456789"
    anonymous = Client().get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics", **bearer("scrape-me-wrong")).status_code == 401
    assert Client().get("/metrics", **bearer("scrape-me-0123456789")).status_code == 200
    assert Client().get("/metrics", **bearer(admin_token)).status_code == 200
    make_workflow("only_this")
    assert Client().get("/metrics", **bearer(make_token("limited", ["only_this"]))).status_code == 401
    viewer, admin = Client(), Client()
    viewer.force_login(make_user("viewer"))
    admin.force_login(make_user("admin", username="boss"))
    assert viewer.get("/metrics").status_code == 401
    assert admin.get("/metrics").status_code == 200


def test_metrics_are_valid_exposition_text_with_the_figures(make_workflow, admin_token, settings):
    workflow = make_workflow("counted")
    with transaction.atomic():
        queued = [run_enqueue(workflow=workflow, params={}, trigger="manual", dispatch_on_commit=False)
                  for _ in range(3)]
    WorkflowRun.objects.filter(id=queued[0].id).update(status="running", lease_expires_at=timezone.now()
                                                       - timedelta(seconds=5))
    WorkflowRun.objects.filter(id=queued[1].id).update(status="succeeded", finished_at=timezone.now())
    StepRun.objects.create(run=queued[1], index=0, key="s", action="set_values", status="succeeded",
                           started_at=timezone.now(), duration_ms=250)
    dispatch(queued[2].id, "interactive")
    beat_and_workers_alive()

    response = Client().get("/metrics", **bearer(admin_token))
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = response.content.decode().splitlines()
    declared = set()
    for line in lines:
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
        elif not line.startswith("# HELP "):
            assert SAMPLE.match(line), line
            assert re.split(r"[{ ]", line)[0] in declared, f"{line} has no # TYPE before it"
    text = "\n".join(lines)
    assert 'engine_room_runs{status="queued"} 1' in text and 'engine_room_runs{status="running"} 1' in text
    assert 'engine_room_runs_needing_sweep{reason="lease_expired"} 1' in text
    assert 'engine_room_runs_recent{status="succeeded"} 1' in text
    assert 'engine_room_step_duration_seconds{action="set_values",quantile="0.5"} 0.25' in text
    assert 'engine_room_steps_recent{action="set_values",status="succeeded"} 1' in text
    assert re.search(r'engine_room_queue_depth\{queue="interactive"\} [1-9]', text)
    assert 'engine_room_up{check="database"} 1' in text and 'engine_room_up{check="worker"} 1' in text
