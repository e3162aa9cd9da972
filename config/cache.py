"""Django's Redis cache backend, keeping one redis-py client per connection pool, and the counters the
rate limits use: one round trip per call on Redis."""
import functools

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusedClientCacheClient(RedisCacheClient):
    """Django builds a new redis.Redis for every cache call, and each one fills a dict of ~170 response
    callbacks: four times per webhook call. A client is thread-safe over its pool, so one per pool does."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        self._count_script = None  # on the write client, which get_client(write=True) always returns

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client

    def get_many_and_count(self, keys: list[str], counter: str | None, timeout: int) -> tuple[dict, int | None]:
        if self._count_script is None:
            self._count_script = self.get_client(write=True).register_script(_GET_MANY_AND_COUNT)
        found, count = self._count_script(keys=[*keys, counter] if counter is not None else keys,
                                          args=[timeout if counter is not None else ""])
        values = {key: self._serializer.loads(value) for key, value in zip(keys, found, strict=True)
                  if value is not None}
        return values, count


# MGET the keys, and (ARGV[1] not empty) count one more on the last key, which SET NX EX starts at 0 with
# the window's TTL: a script, so that the counter cannot expire between the two and be left without a TTL,
# and one command and one reply where a MULTI/EXEC pipeline had five (bench O32).
_GET_MANY_AND_COUNT = """
local n = #KEYS
local count = false
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[n], 0, 'EX', ARGV[1], 'NX')
  count = redis.call('INCR', KEYS[n])
  n = n - 1
end
local values = {}
if n > 0 then values = redis.call('MGET', unpack(KEYS, 1, n)) end
return {values, count}
"""


class RedisCache(DjangoRedisCache):
    """settings.CACHES' backend when Redis answers."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientCacheClient

    def get_many_and_count(self, keys: list[str], counter: str | None, timeout: int) -> tuple[dict, int | None]:
        full = {self.make_and_validate_key(key): key for key in keys}
        counter_key = self.make_and_validate_key(counter) if counter is not None else None
        values, count = self._cache.get_many_and_count(list(full), counter_key, timeout)
        return {full[key]: value for key, value in values.items()}, count


def get_many_and_count(keys: list[str], counter: str | None, timeout: int) -> tuple[dict, int | None]:
    """cache.get_many(keys), and one more on the fixed-window counter `counter` (None: no counter), which
    expires `timeout` s after its first count: one command on Redis, for a few keys (Lua's unpack takes some
    thousands at most). Raises what the cache raises."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        return cache.get_many_and_count(keys, counter, timeout)
    values = cache.get_many(keys) if keys else {}
    if counter is None:
        return values, None
    try:
        return values, cache.incr(counter)
    except ValueError:  # the window's first count
        return values, 1 if cache.add(counter, 1, timeout) else cache.incr(counter)


def window_count(counter: str, timeout: int) -> int:
    """One more on a fixed-window counter that expires `timeout` s after its first count."""
    return get_many_and_count([], counter, timeout)[1]


@functools.cache
def redis_client(timeout: float):
    """One redis-py client (and pool) per process and socket timeout on REDIS_URL, for what the cache API
    cannot say: pub/sub wake-ups, run lists and their scripts."""
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=timeout)
