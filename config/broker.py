"""Kombu's Redis transport, keeping one redis-py client per channel for publishes and acknowledgements."""
from kombu.transport import redis


class Channel(redis.Channel):
    """kombu builds a new redis.Redis (and its ~170 response callbacks) for every publish and every ack;
    a client is thread-safe over the channel's pool, so one per channel does."""

    _reused_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        if self._reused_client is None:
            self._reused_client = super()._create_client()
        return self._reused_client


class Transport(redis.Transport):
    """CELERY_BROKER_TRANSPORT when the broker is Redis."""

    Channel = Channel
