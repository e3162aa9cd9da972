"""Rate limits on the cache: per token (or signed-in person) and per IP for callers without one.

A fixed-window counter (one atomic INCR per call) rather than DRF's default timestamp history,
which would pickle a list as long as the rate on every call. When the cache is down the limits
fail open: an outage of Redis must not take the endpoints down with it.
"""
import logging

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .selectors import TokenInfo

logger = logging.getLogger(__name__)


class _WindowThrottle(SimpleRateThrottle):
    def get_rate(self):
        # Read per call, so that settings overrides (tests, drills) apply without a restart.
        return settings.ENGINE_ROOM_RATE_LIMITS.get(self.scope)

    def __init__(self):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def identity(self, request) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request, view):
        ident = self.identity(request)
        if ident is None:
            return None
        return f"throttle:{self.scope}:{ident}:{int(self.timer() // self.duration)}"

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        try:
            try:
                count = self.cache.incr(self.key)
            except ValueError:  # first call of this window
                if not self.cache.add(self.key, 1, self.duration + 1):
                    count = self.cache.incr(self.key)
                else:
                    count = 1
        except Exception:  # cache unreachable: fail open
            logger.warning("Rate limit cache unavailable; not limiting", exc_info=True)
            return True
        return count <= self.num_requests

    def wait(self):
        return self.duration - (self.now % self.duration)


class PrincipalRateThrottle(_WindowThrottle):
    """Per API token, or per signed-in person; see ENGINE_ROOM_RATE_LIMITS["token"]."""

    scope = "token"

    def identity(self, request):
        auth = getattr(request, "auth", None)
        if isinstance(auth, TokenInfo):
            return f"t{auth.id}"
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.pk is not None:
            return f"u{user.pk}"
        return None


class IpRateThrottle(_WindowThrottle):
    """Per client IP, for calls that carry no valid token and no session; see ENGINE_ROOM_RATE_LIMITS["ip"]."""

    scope = "ip"

    def identity(self, request):
        if PrincipalRateThrottle.identity(self, request) is not None:
            return None
        return self.get_ident(request)


def retry_after(throttle: _WindowThrottle) -> int:
    return max(1, int(throttle.wait() + 0.999))


def webhook_throttle(request, token: TokenInfo | None) -> _WindowThrottle | None:
    """The limit a webhook call exceeds, if any: its token's, or its IP's when it has no valid token."""
    throttle = PrincipalRateThrottle() if token is not None else IpRateThrottle()
    # The webhook reads no session, so the throttles see the token (or nothing) and the client address.
    allowed = throttle.allow_request(_Caller(request, token), None)
    return None if allowed else throttle


class _Caller:
    """The parts of a webhook request the throttles read: its token and the client address headers."""

    def __init__(self, request, token: TokenInfo | None):
        self.META = request.META
        self.headers = request.headers
        self.auth = token
        self.user = None
