"""Django's Redis cache backend, keeping one redis-py client per connection pool."""
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusedClientCacheClient(RedisCacheClient):
    """Django builds a new redis.Redis for every cache call, and each one fills a dict of ~170 response
    callbacks: four times per webhook call. A client is thread-safe over its pool, so one per pool does."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(DjangoRedisCache):
    """settings.CACHES' backend when Redis answers."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientCacheClient
