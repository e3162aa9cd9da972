"""Waiting for a sync run: until it has an answer (`return_response`) or has finished, or time is up.

The wait sleeps on a Redis pub/sub channel when Redis is there, so a "run changed" message (see
`run_changed`, published from the worker when `logs.signals.run_finished` fires) wakes the caller at
once; between messages, and without Redis, it reads the run row with a backoff (20 ms doubling to
250 ms). Each read is one small query by primary key.
"""
import logging
import time
from dataclasses import dataclass

from django.conf import settings

from config.cache import redis_client
from logs.models import FINISHED_STATUSES, WorkflowRun

logger = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.25


def run_channel(run_id) -> str:
    """The pub/sub channel a worker may publish on when a run gets its response or finishes."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:run:{run_id}"


@dataclass(frozen=True)
class RunState:
    """What a waiting caller needs of a run row."""

    id: str
    status: str
    response: dict | None
    error_code: str
    error: str

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def answered(self) -> bool:
        return self.response is not None or self.finished


def run_changed(run_id) -> None:
    """Wake the callers waiting on a run (from the worker); without Redis they notice at their next read."""
    if not settings.REDIS_AVAILABLE:
        return
    try:
        _redis().publish(run_channel(run_id), "changed")
    except Exception:  # a lost wake-up only costs the waiting caller its next poll interval
        logger.warning("Could not publish the change of run %s", run_id, exc_info=True)


def run_state(run_id) -> RunState:
    row = WorkflowRun.objects.filter(id=run_id).values("status", "response", "error_code", "error").first()
    if row is None:  # deleted under us (retention): report it as gone, not as a crash
        return RunState(str(run_id), "cancelled", None, "not_found", "The run no longer exists.")
    return RunState(str(run_id), **row)


def run_wait(run_id, *, timeout: float) -> RunState:
    """The run's state once it has a response or has finished, or as it stands when `timeout` passes."""
    deadline = time.monotonic() + timeout
    subscription = _subscribe(run_id)
    try:
        # Subscribed first, then read: a message sent between the two cannot be missed.
        state = run_state(run_id)
        pause = FIRST_POLL_SECONDS
        while not state.answered:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            _sleep(subscription, min(pause, remaining))
            pause = min(pause * 2, MAX_POLL_SECONDS)
            state = run_state(run_id)
        return state
    finally:
        if subscription is not None:
            try:
                subscription.close()
            except Exception:  # closing a broken connection: nothing left to release
                pass


def _redis():
    """The process's client; each waiting caller borrows one connection from its pool."""
    return redis_client(1.0)


def _subscribe(run_id):
    if not settings.REDIS_AVAILABLE:
        return None
    try:
        subscription = _redis().pubsub(ignore_subscribe_messages=True)
        subscription.subscribe(run_channel(run_id))
        return subscription
    except Exception:  # Redis down: the wait falls back to reading the row
        logger.warning("Redis unavailable; waiting for run %s by polling", run_id, exc_info=True)
        return None


def _sleep(subscription, seconds: float) -> None:
    if subscription is None:
        time.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    try:
        # get_message returns early (None) for the subscription's own confirmation; only a published
        # message or the end of the interval ends the sleep.
        while (remaining := deadline - time.monotonic()) > 0:
            if subscription.get_message(timeout=remaining) is not None:
                return
    except Exception:  # a dropped connection: sleep out the interval and keep polling
        time.sleep(max(0.0, deadline - time.monotonic()))
