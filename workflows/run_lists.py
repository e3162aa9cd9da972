"""Runs started alone wait on a Redis list, taken one at a time by a few drainer tasks (docs/engine.md, "Run lists").

A Celery message cost a worker more than a short run's three steps (bench/BENCHMARKS.md, O29), and a webhook
brings its runs one at a time, so they cannot share messages the way the dispatcher's do. Instead a run's id
goes on the list of its queue and timeout, and a Celery message starts a drainer only when the list has more
waiting than drainers taking from it (up to ENGINE_ROOM_DRAINERS). A drainer takes ids until the list stays
empty for ENGINE_ROOM_DRAINER_LINGER_SECONDS; after ENGINE_ROOM_MESSAGE_SECONDS it hands its place to a new
message at the back of the queue, so the other queues' messages on the same worker get their turn.

Nothing is lost with Redis: the run's row is written (queued) before its id is pushed, and the sweeper
resends any run still queued ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS later, as it does a lost message.
"""
import logging
import time
import uuid
from functools import cache

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

logger = logging.getLogger(__name__)

# Push the id; start a drainer (reserve its place and say so) when none is taking from the list, or when
# more runs wait than drainers take them, up to the most allowed. A place not renewed for
# ENGINE_ROOM_DRAINER_STALE_SECONDS (its drainer died, or sits on a run that long) no longer counts.
_PUSH = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[4]))
local drainers = redis.call('ZCARD', KEYS[2])
if drainers < tonumber(ARGV[3]) and (drainers == 0 or redis.call('LLEN', KEYS[1]) > drainers) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
  return 1
end
return 0
"""

# A drainer leaves only if the list is empty, in the same step as it gives up its place: a run pushed
# before then is its to take, one pushed after sees one drainer fewer and starts another.
_LEAVE = """
if redis.call('LLEN', KEYS[1]) > 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


@cache
def _client():
    """One client (and connection pool) per process."""
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=5)


@cache
def _scripts():
    client = _client()
    return client.register_script(_PUSH), client.register_script(_LEAVE)


def _keys(queue: str, timeout_seconds: int) -> list[str]:
    base = f"{settings.QUEUE_PREFIX}er:runs:{queue}:{timeout_seconds}"
    return [base, f"{base}:drainers"]


def enabled() -> bool:
    """Whether runs started alone go on lists (Redis answers at start-up and the setting allows it)."""
    return bool(settings.REDIS_AVAILABLE and settings.ENGINE_ROOM_RUN_LISTS)


def push(run_id, queue: str, timeout_seconds: int) -> bool:
    """Put a run on its list and start a drainer if one is wanted; False if either failed (the caller sends
    the run in a message of its own instead)."""
    keys = _keys(queue, timeout_seconds)
    token = uuid.uuid4().hex
    try:
        wanted = _scripts()[0](keys=keys, args=[
            str(run_id), time.time(), settings.ENGINE_ROOM_DRAINERS, settings.ENGINE_ROOM_DRAINER_STALE_SECONDS, token,
        ])
    except Exception:  # Redis down: the run goes as a message, as it would without lists
        logger.warning("Could not put run %s on its list", run_id, exc_info=True)
        return False
    return not wanted or _start(queue, timeout_seconds, token)


def _start(queue: str, timeout_seconds: int, token: str) -> bool:
    from workflows.services.runs import send_drainer

    return send_drainer(queue, timeout_seconds, token)


def drain(queue: str, timeout_seconds: int, token: str) -> int:
    """Execute runs from the list in turn (the drainer task's body); returns how many it took."""
    from workflows.engine import run_execute

    client = _client()
    keys = _keys(queue, timeout_seconds)
    leave = _scripts()[1]
    began = time.monotonic()
    taken = 0
    left = False
    try:
        while True:
            if time.monotonic() - began > settings.ENGINE_ROOM_MESSAGE_SECONDS:
                break
            pipe = client.pipeline(transaction=False)
            pipe.lpop(keys[0])
            pipe.zadd(keys[1], {token: time.time()})  # renew the place (again, if it had gone stale)
            run_id = pipe.execute()[0]
            if run_id is None:
                popped = client.blpop([keys[0]], timeout=settings.ENGINE_ROOM_DRAINER_LINGER_SECONDS)
                if popped is None:
                    if leave(keys=keys, args=[token]):
                        left = True
                        return taken
                    continue
                run_id = popped[1]
            taken += 1
            try:
                run_execute(run_id.decode())
            except SoftTimeLimitExceeded:
                raise
            except Exception:  # logged; the run's lease or queued row brings the sweeper back to it
                logger.exception("Run %s, taken from its list, raised", run_id)
    finally:
        if not left:
            _hand_over(keys, leave, queue, timeout_seconds, token)
    return taken


def _hand_over(keys, leave, queue: str, timeout_seconds: int, token: str) -> None:
    """Leave if the list is empty, else give this drainer's place to a new message (sent now, so it waits
    behind the other queues' messages); a drainer that could do neither leaves its place to go stale."""
    try:
        if not leave(keys=keys, args=[token]):
            _start(queue, timeout_seconds, token)
    except Exception:  # Redis down: the runs on the list are the sweeper's now
        logger.warning("Drainer of %s could not hand over its place", keys[0], exc_info=True)
