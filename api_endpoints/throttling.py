"""Rate limits on the cache: per token (or signed-in person) and per IP for callers without one.

A fixed-window counter (one atomic INCR per call, one round trip) rather than DRF's default timestamp
history, which would pickle a list as long as the rate on every call. A token's counter is named by the
SHA-256 of the whole token (what the database keeps), which only its holder can produce — not by its
public prefix, or anyone could use up another's limit — so a webhook call counts it in the same round
trip that reads the token and the workflow from the cache. When the cache is down the limits fail open: an outage of Redis must not take
the endpoints down with it.
"""
import logging

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from config.cache import window_count

from .selectors import TokenInfo

logger = logging.getLogger(__name__)


class _WindowThrottle(SimpleRateThrottle):
    def get_rate(self):
        # Read per call, so that settings overrides (tests, drills) apply without a restart.
        return settings.ENGINE_ROOM_RATE_LIMITS.get(self.scope)

    def __init__(self):
        self.count = None
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def identity(self, request) -> str | None:
        raise NotImplementedError

    def window_key(self, ident: str) -> str:
        self.now = self.timer()
        return f"throttle:{self.scope}:{ident}:{int(self.now // self.duration)}"

    @property
    def window_seconds(self) -> int:
        return (self.duration or 0) + 1

    def get_cache_key(self, request, view):
        ident = self.identity(request)
        return None if ident is None else self.window_key(ident)

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            count = window_count(self.key, self.window_seconds)
        except Exception:  # cache unreachable: fail open
            logger.warning("Rate limit cache unavailable; not limiting", exc_info=True)
            return True
        return self.counted(count)

    def counted(self, count: int) -> bool:
        """Whether a call numbered `count` in its window is within the rate."""
        self.count = count
        return count <= self.num_requests

    def wait(self):
        return self.duration - (self.now % self.duration)


class PrincipalRateThrottle(_WindowThrottle):
    """Per API token, or per signed-in person; see ENGINE_ROOM_RATE_LIMITS["token"]."""

    scope = "token"

    @staticmethod
    def token_identity(digest: str) -> str:
        return f"d{digest}"

    def token_window_key(self, digest: str) -> str | None:
        """The counter of a token's current window, known from the presented token before it is checked."""
        return None if self.rate is None else self.window_key(self.token_identity(digest))

    def identity(self, request):
        auth = getattr(request, "auth", None)
        if isinstance(auth, TokenInfo):
            return PrincipalRateThrottle.token_identity(auth.digest)
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


def webhook_throttle(request, token: TokenInfo | None, counted: tuple[str, int] | None = None) -> _WindowThrottle:
    """The limit of a webhook call, counted: its token's, or its IP's when it has no valid token.
    `counted` is (counter key, count) when the call's lookups already counted its token's window."""
    if token is not None:
        throttle = PrincipalRateThrottle()
        if counted is not None and counted[0] == throttle.token_window_key(token.digest):
            throttle.counted(counted[1])
            return throttle
    else:
        throttle = IpRateThrottle()
    # The webhook reads no session, so the throttles see the token (or nothing) and the client address.
    throttle.allow_request(_Caller(request, token), None)
    return throttle


def over_limit(throttle: _WindowThrottle) -> bool:
    """Whether a counted call is past its rate (an uncounted one, with no rate or no cache, never is)."""
    return throttle.count is not None and throttle.count > throttle.num_requests


class _Caller:
    """The parts of a webhook request the throttles read: its token and the client address headers."""

    def __init__(self, request, token: TokenInfo | None):
        self.META = request.META
        self.headers = request.headers
        self.auth = token
        self.user = None
