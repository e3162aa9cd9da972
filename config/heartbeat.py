"""Heartbeats of beat and the workers, written to the cache for /healthz and /metrics.

Beat's heartbeat is written by the beat process itself each time it sends a task (the dispatcher
goes out every second). A worker's heartbeat is the `worker_heartbeat` task that beat sends to each
queue every ENGINE_ROOM_HEARTBEAT_SECONDS: when it is fresh, beat, the broker and a worker serving
that queue all work — which is what "the worker is up" has to mean to someone waiting for a run.
"""
import logging
import time

from celery import shared_task
from celery.signals import beat_init, before_task_publish
from django.core.cache import cache

logger = logging.getLogger(__name__)

QUEUE_KINDS = ("interactive", "default", "bulk")
BEAT_KEY = "heartbeat:beat"
# Kept a day, so that a stale heartbeat shows its age instead of vanishing.
KEEP_SECONDS = 24 * 3600
# Beat sends a task every second or so; one cache write per this many seconds is plenty.
_BEAT_WRITE_EVERY = 2.0


def worker_key(kind: str) -> str:
    return f"heartbeat:worker:{kind}"


class _BeatState:
    """Whether this process is celery beat, and when it last wrote its heartbeat."""

    is_beat = False
    last_write = 0.0


@beat_init.connect(dispatch_uid="engine_room_beat_heartbeat_init")
def _beat_started(sender=None, **kwargs):
    _BeatState.is_beat = True
    _write_beat()


@before_task_publish.connect(dispatch_uid="engine_room_beat_heartbeat")
def _beat_publishing(sender=None, **kwargs):
    # Every process sends tasks (the web enqueues runs); only beat's sends are its heartbeat.
    if _BeatState.is_beat and time.monotonic() - _BeatState.last_write >= _BEAT_WRITE_EVERY:
        _write_beat()


def _write_beat() -> None:
    _BeatState.last_write = time.monotonic()
    try:
        cache.set(BEAT_KEY, time.time(), KEEP_SECONDS)
    except Exception:  # the cache being down must not stop beat from sending the schedule
        logger.warning("Could not write beat's heartbeat", exc_info=True)


@shared_task(ignore_result=True)
def worker_heartbeat(kind: str) -> None:
    """Record that a worker serving the `kind` queue (interactive, default, bulk) is taking tasks."""
    cache.set(worker_key(kind), time.time(), KEEP_SECONDS)


def heartbeat_ages(now: float | None = None) -> dict[str, float | None]:
    """Seconds since each heartbeat ("beat", "worker:<kind>"); None when there has been none."""
    now = time.time() if now is None else now
    keys = {"beat": BEAT_KEY, **{f"worker:{kind}": worker_key(kind) for kind in QUEUE_KINDS}}
    values = cache.get_many(list(keys.values()))
    return {name: (max(0.0, now - values[key]) if key in values else None) for name, key in keys.items()}
