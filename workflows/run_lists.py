"""Runs started alone wait on a Redis list, taken one at a time by a few drainer tasks (docs/engine.md, "Run lists").

A Celery message cost a worker nearly as much CPU as a short run's three steps (bench/optimisations, O29),
and a webhook brings its runs one at a time, so they cannot share messages the way the dispatcher's do.
Instead a run's id goes on the list of its queue and timeout, and a Celery message starts a drainer only
when the list has more waiting than idle drainers (up to ENGINE_ROOM_DRAINERS, across all machines). A
drainer takes ids until the list stays empty for ENGINE_ROOM_DRAINER_LINGER_SECONDS; after
ENGINE_ROOM_MESSAGE_SECONDS it hands its place to a new message at the back of the queue, so the other
queues' messages on the same worker get their turn.

Nothing is lost with Redis: the run's row is written (queued) before its id is pushed, and the sweeper
resends any run still queued ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS later, as it does a lost message.
"""
import logging
import time
import uuid
from functools import cache

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from config.cache import redis_client

logger = logging.getLogger(__name__)

# Place ages are read off Redis's clock, so that web and worker machines need not agree on the time.
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# A drainer's place (KEYS[2], scored by when it last renewed it) counts until it is
# ENGINE_ROOM_DRAINER_STALE_SECONDS old (its drainer died, or sits on one run that long); a drainer
# executing a run is also in KEYS[3]. Both scripts that may start a drainer drop stale places first.
_PRUNE = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
for _, member in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if not redis.call('ZSCORE', KEYS[2], member) then redis.call('SREM', KEYS[3], member) end
end
"""

# More runs waiting than idle drainers start another drainer, up to the most allowed: so a run never
# waits behind a busy drainer while a place is free.
_TOP_UP = """
local drainers = redis.call('ZCARD', KEYS[2])
local started = false
if drainers < tonumber(ARGV[1]) and redis.call('LLEN', KEYS[1]) > drainers - redis.call('SCARD', KEYS[3]) then
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  started = ARGV[3]
end
"""

# Push the id and start a drainer if one is wanted (the new place's token, else false).
# ARGV: most drainers, stale seconds, a new token, the run's id.
_PUSH = _NOW + """
redis.call('RPUSH', KEYS[1], ARGV[4])
""" + _PRUNE + _TOP_UP + """
return started
"""

# A drainer takes the next id (or false) and renews its place, marked busy when it took one and idle
# when not; taking one may leave more waiting than idle drainers, which starts another (the second
# value). A drainer whose place went stale and was filled meanwhile (its message waited behind others,
# say while no worker ran, and the pushes started new drainers) would go over the cap: while a place
# was renewed in the last ARGV[6] seconds (a drainer is at work), it takes nothing, puts back an id it
# already took, and leaves (the third value); with every place that quiet (their drainers may be dead
# and not yet stale), it works over the cap rather than leave the list waiting. ARGV: most drainers,
# stale seconds, a new token, this drainer's token, an id it already took (from BLPOP) or '', recent seconds.
_TAKE = _NOW + _PRUNE + """
local id = ARGV[5]
if not redis.call('ZSCORE', KEYS[2], ARGV[4]) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[1])
    and #redis.call('ZRANGEBYSCORE', KEYS[2], now - tonumber(ARGV[6]), '+inf', 'LIMIT', 0, 1) > 0 then
  if id ~= '' then redis.call('LPUSH', KEYS[1], id) end
  redis.call('SREM', KEYS[3], ARGV[4])
  return {false, false, 1}
end
if id == '' then id = redis.call('LPOP', KEYS[1]) end
redis.call('ZADD', KEYS[2], now, ARGV[4])
if not id then
  redis.call('SREM', KEYS[3], ARGV[4])
  return {false, false}
end
redis.call('SADD', KEYS[3], ARGV[4])
""" + _TOP_UP + """
return {id, started}
"""

# A drainer leaves only if the list is empty, in the same step as it gives up its place: a run pushed
# before then is its to take, one pushed after sees one drainer fewer and starts another.
_LEAVE = """
if redis.call('LLEN', KEYS[1]) > 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# A drainer that could not be started gives its place back; so does one handing its place on (it runs
# nothing while its next message waits).
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
"""


@cache
def _script(source: str, timeout: float):
    """A script registered on the client of that timeout (EVALSHA, loaded on first use)."""
    return redis_client(timeout).register_script(source)


# A web thread waits at most this long on a Redis that hangs before the run goes as a message instead.
PUSH_TIMEOUT = 1.0
# A drainer's BLPOP waits the linger; its calls may wait longer than a push's.
DRAIN_TIMEOUT = 5.0


def _keys(queue: str, timeout_seconds: int) -> list[str]:
    """The list, its drainers' places and its busy drainers."""
    base = f"{settings.QUEUE_PREFIX}er:runs:{queue}:{timeout_seconds}"
    return [base, f"{base}:drainers", f"{base}:busy"]


def _limits() -> list:
    """The scripts' first arguments: the most drainers, when a place goes stale, a token for a new place."""
    return [settings.ENGINE_ROOM_DRAINERS, settings.ENGINE_ROOM_DRAINER_STALE_SECONDS, uuid.uuid4().hex]


def enabled() -> bool:
    """Whether runs started alone go on lists (Redis answers at start-up and the setting allows it)."""
    return bool(settings.REDIS_AVAILABLE and settings.ENGINE_ROOM_RUN_LISTS)


def push(run_id, queue: str, timeout_seconds: int) -> bool:
    """Put a run on its list and start a drainer if one is wanted; False if either failed (the caller sends
    the run in a message of its own instead)."""
    keys = _keys(queue, timeout_seconds)
    try:
        token = _script(_PUSH, PUSH_TIMEOUT)(keys=keys, args=[*_limits(), str(run_id)])
    except Exception:  # Redis down or hanging: the run goes as a message, as it would without lists
        logger.warning("Could not put run %s on its list", run_id, exc_info=True)
        return False
    return not token or _start(keys, queue, timeout_seconds, token.decode(), PUSH_TIMEOUT)


def _start(keys: list[str], queue: str, timeout_seconds: int, token: str, timeout: float) -> bool:
    """Send the message of a drainer that holds a place; if it cannot be sent, give the place back."""
    from workflows.services.runs import send_drainer

    if send_drainer(queue, timeout_seconds, token):
        return True
    try:
        _script(_RELEASE, timeout)(keys=keys, args=[token])
    except Exception:  # Redis down too: the place goes stale, the sweeper resends what waits
        logger.warning("Could not give back the place of a drainer of %s", keys[0], exc_info=True)
    return False


def drain(queue: str, timeout_seconds: int, token: str) -> int:
    """Execute runs from the list in turn (the drainer task's body); returns how many it took. A run's end
    takes the next id and, on PostgreSQL, claims that run in the same statement (engine.NextRun)."""
    from workflows.engine import NextRun, run_execute

    keys = _keys(queue, timeout_seconds)
    take = _script(_TAKE, DRAIN_TIMEOUT)
    # A drainer at work renews its place at every take; one handing its place on, within about this.
    recent = settings.ENGINE_ROOM_MESSAGE_SECONDS + settings.ENGINE_ROOM_DRAINER_LINGER_SECONDS + 1
    began = time.monotonic()
    taken = 0
    left = False
    state = {"over": False, "empty": False}

    def take_next(popped: str = "") -> str | None:
        """One take (the id BLPOP `popped`, else the list's next): the id, or None; starts a drainer if wanted."""
        run_id, started, *over = take(keys=keys, args=[*_limits(), token, popped, recent])
        state["over"], state["empty"] = bool(over), run_id is None and not over
        if started:
            _start(keys, queue, timeout_seconds, started.decode(), DRAIN_TIMEOUT)
        return run_id.decode() if run_id is not None else None

    def take_following() -> str | None:
        # Past its time the drainer takes no more, and hands its place on.
        return take_next() if time.monotonic() - began <= settings.ENGINE_ROOM_MESSAGE_SECONDS else None

    following = None
    try:
        while True:
            claimed = None
            if following is not None and following.run_id is not None:
                # Taken by the last run's end (and claimed with it, unless that could not be done).
                run_id, claimed = following.run_id, following.claimed
            else:
                if state["over"]:  # no place of its own and none free: the drainers holding them take the rest
                    left = True
                    return taken
                if time.monotonic() - began > settings.ENGINE_ROOM_MESSAGE_SECONDS:
                    break
                # The last run's end found the list empty a moment ago: wait on it without taking again.
                run_id = None if following is not None and following.tried and state["empty"] else take_next()
                if run_id is None and not state["over"]:
                    popped = redis_client(DRAIN_TIMEOUT).blpop([keys[0]], timeout=settings.ENGINE_ROOM_DRAINER_LINGER_SECONDS)
                    if popped is None:
                        if _script(_LEAVE, DRAIN_TIMEOUT)(keys=keys, args=[token]):
                            left = True
                            return taken
                        following = None
                        continue
                    # Marked busy now, and another drainer started if a run arrived meanwhile.
                    run_id = take_next(popped[1])
                if state["over"]:
                    left = True
                    return taken
            taken += 1
            following = NextRun(run_id, take_following)
            try:
                run_execute(run_id, claimed=claimed, then=following)
            except SoftTimeLimitExceeded:
                raise
            except Exception:  # logged; the run's lease or queued row brings the sweeper back to it
                logger.exception("Run %s, taken from its list, raised", run_id)
    finally:
        if following is not None and following.run_id is not None:
            _give_back(keys, following.release())
        if not left:
            _hand_over(keys, queue, timeout_seconds, token)
    return taken


def _give_back(keys: list[str], run_id: str) -> None:
    """Put back at the head of the list an id taken by the end of a run an error escaped from, and not started."""
    try:
        redis_client(DRAIN_TIMEOUT).lpush(keys[0], run_id)
    except Exception:  # Redis down: the sweeper resends the run
        logger.warning("Could not put run %s back on %s", run_id, keys[0], exc_info=True)


def _hand_over(keys: list[str], queue: str, timeout_seconds: int, token: str) -> None:
    """Leave if the list is empty, else give this drainer's place to a new message (sent now, so it waits
    behind the other queues' messages) and count it idle meanwhile; a drainer that could do neither
    leaves its place to go stale."""
    try:
        if not _script(_LEAVE, DRAIN_TIMEOUT)(keys=keys, args=[token]):
            redis_client(DRAIN_TIMEOUT).srem(keys[2], token)
            _start(keys, queue, timeout_seconds, token, DRAIN_TIMEOUT)
    except Exception:  # Redis down: the runs on the list are the sweeper's now
        logger.warning("Drainer of %s could not hand over its place", keys[0], exc_info=True)
