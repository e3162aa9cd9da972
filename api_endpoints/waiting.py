"""Waiting for a sync run: until it has an answer (`return_response`) or has finished, or time is up.

The wait sleeps on a Redis pub/sub channel when Redis is there, so a "run changed" message (see
`run_changed`, published from the worker when `logs.signals.run_finished` fires) wakes the caller at
once; between messages, and without Redis, it reads the run row with a backoff (20 ms doubling to
250 ms). Each read is one small query by primary key.

The message carries what the caller needs of the committed row (status, response, error) when that is
small, so the woken caller answers without reading the row. And a webhook sends its SUBSCRIBE before it
writes and pushes its run, so its wait skips the first read: the worker's message comes after the push,
which Redis reads after the SUBSCRIBE; should it ever come first, the wait's first poll, 20 ms on, reads
the row. A run that was already there (an idempotent replay) is read first, as before.

Each thread keeps its subscriber connection from one wait to the next (subscribing to the run's channel,
then unsubscribing): a new connection per call cost a sync call about 1.4 ms of the web's CPU and 1.9 ms
on the clock here (bench/BENCHMARKS.md, O34). One left idle for SUBSCRIBER_IDLE_SECONDS is replaced, so
that a connection a network dropped without a word does not outlive a quiet spell.
"""
import json
import logging
import threading
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


# A state larger than this goes as a bare wake-up, and the caller reads the row.
STATE_MESSAGE_BYTES = 64 * 1024
WAKE_UP = "changed"
_STATE_FIELDS = ("status", "response", "error_code", "error")


def run_changed(run: WorkflowRun) -> None:
    """Wake the callers waiting on a run with its committed state (the worker, after the commit)."""
    if not settings.REDIS_AVAILABLE:
        return
    try:
        message = json.dumps({name: getattr(run, name) for name in _STATE_FIELDS},
                             cls=WorkflowRun._meta.get_field("response").encoder)
    except (TypeError, ValueError):  # not JSON as the row stores it: the caller reads the row
        message = WAKE_UP
    if len(message) > STATE_MESSAGE_BYTES:
        message = WAKE_UP
    try:
        _redis().publish(run_channel(run.id), message)
    except Exception:  # a lost wake-up only costs the waiting caller its next poll interval
        logger.warning("Could not publish the change of run %s", run.id, exc_info=True)


def run_state(run_id) -> RunState:
    """The run's state as its row has it."""
    row = WorkflowRun.objects.filter(id=run_id).values(*_STATE_FIELDS).first()
    if row is None:  # deleted under us (retention): report it as gone, not as a crash
        return RunState(str(run_id), "cancelled", None, "not_found", "The run no longer exists.")
    return RunState(str(run_id), **row)


class RunWait:
    """A caller's wait on a run, subscribed for the block: open it before the run is enqueued."""

    def __init__(self, run_id):
        self.channel = run_channel(run_id)
        self.subscription = None

    def __enter__(self):
        self.subscription = _subscribe(self.channel)
        return self

    def __exit__(self, *exc):
        self._leave()
        return False

    def _leave(self) -> None:
        if self.subscription is not None:
            _unsubscribe(self.subscription, self.channel)
            self.subscription = None

    def result(self, run_id, *, timeout: float, new: bool = False) -> RunState:
        """The run's state once answered or finished, else when `timeout` passes; `new`: enqueued in the block."""
        deadline = time.monotonic() + timeout
        channel = run_channel(run_id)
        if channel != self.channel:
            # Another run than the one subscribed for (an idempotent replay's earlier run): read it first.
            subscribed = self.subscription is not None
            self._leave()
            self.channel, new = channel, False
            if subscribed:
                self.subscription = _subscribe(channel)
        # Subscribed first, then read: a message sent between the two cannot be missed.
        state = None if new and self.subscription is not None else run_state(run_id)
        pause = FIRST_POLL_SECONDS
        while state is None or not state.answered:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.subscription, message = _sleep(self.subscription, channel, min(pause, remaining))
            pause = min(pause * 2, MAX_POLL_SECONDS)
            state = _state_in(run_id, message) or run_state(run_id)
        return state if state is not None else run_state(run_id)


def _state_in(run_id, message: bytes | None) -> RunState | None:
    """The committed state a wake-up carries, if it carries one."""
    if not message or message == WAKE_UP.encode():
        return None
    try:
        fields = json.loads(message)
        return RunState(str(run_id), **{name: fields[name] for name in _STATE_FIELDS})
    except (ValueError, TypeError, KeyError):  # not a state: read the row
        return None


def _redis():
    """The process's client; each thread's subscriber holds one connection of its pool."""
    return redis_client(1.0)


_thread = threading.local()
# A subscriber with more than this many responses left unread starts afresh rather than read them all.
UNREAD_LIMIT = 32
# A subscriber idle this long is replaced: a connection dropped without a FIN or RST (a NAT's idle
# timeout, a failover) reads as healthy, and a SUBSCRIBE sent on it would go nowhere.
SUBSCRIBER_IDLE_SECONDS = 30.0


def _subscribe(channel: str):
    """This thread's subscriber, subscribed to `channel`; None without Redis (the wait reads the row)."""
    if not settings.REDIS_AVAILABLE:
        return None
    subscription = getattr(_thread, "subscriber", None)
    if subscription is not None and not _reusable(subscription):
        _forget(subscription)
        subscription = None
    try:
        if subscription is None:
            subscription = _thread.subscriber = _redis().pubsub(ignore_subscribe_messages=True)
        subscription.subscribe(channel)
        _thread.used_at = time.monotonic()
        return subscription
    except Exception:  # Redis down: the wait falls back to reading the row
        logger.warning("Redis unavailable; waiting on %s by polling", channel, exc_info=True)
        _forget(subscription)
        return None


def _reusable(subscription) -> bool:
    """Whether the kept subscriber can serve another wait, having read what the last one left unread.

    A connection Redis closed shows only on a read, and one idle past SUBSCRIBER_IDLE_SECONDS may be dead
    without showing it: either way a SUBSCRIBE sent on it would go nowhere, and the wait would poll."""
    if time.monotonic() - getattr(_thread, "used_at", 0.0) > SUBSCRIBER_IDLE_SECONDS:
        return False
    try:
        for _ in range(UNREAD_LIMIT):
            if subscription.connection is None or not subscription.connection.can_read(timeout=0):
                return subscription.connection is not None
            # A few ms for the rest of a state message that has only partly arrived.
            subscription.get_message(timeout=0.005)
    except Exception:  # closed by Redis (a restart, a killed client): a new connection instead
        return False
    return False


def _unsubscribe(subscription, channel: str) -> None:
    """Leave the channel and keep the connection for this thread's next wait, which reads the confirmation."""
    try:
        subscription.unsubscribe(channel)
    except Exception:  # a broken connection: the next wait starts a new one
        _forget(subscription)


def _forget(subscription) -> None:
    """Drop this thread's subscriber and close its connection."""
    _thread.subscriber = None
    if subscription is not None:
        try:
            subscription.close()
        except Exception:  # closing a broken connection: nothing left to release
            pass


def _sleep(subscription, channel: str, seconds: float) -> tuple:
    """Wait for a message on `channel` or `seconds`: (the subscriber or None once broken, the message or None)."""
    if subscription is None:
        time.sleep(seconds)
        return None, None
    deadline = time.monotonic() + seconds
    try:
        # get_message returns early (None) for a subscription's own confirmations; only a message on this
        # wait's channel or the end of the interval ends the sleep. One published on an earlier wait's
        # channel just before it unsubscribed may still arrive here: it is not this run's.
        while (remaining := deadline - time.monotonic()) > 0:
            message = subscription.get_message(timeout=remaining)
            if message is not None and message["channel"] in (channel, channel.encode()):
                return subscription, message["data"]
        return subscription, None
    except Exception:  # a dropped connection: sleep out the interval and poll for the rest of this wait
        _forget(subscription)
        time.sleep(max(0.0, deadline - time.monotonic()))
        return None, None
