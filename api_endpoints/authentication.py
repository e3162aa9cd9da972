"""API token authentication: `Authorization: Bearer <token>` or, for Bubble callers, `?api_token=`."""
from rest_framework import authentication, exceptions

from .selectors import TokenInfo, token_authenticate
from .services import token_touch

REALM = 'Bearer realm="engine-room"'


def presented_token(request) -> str | None:
    """The token a request carries, if any (a Django or DRF request)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.GET.get("api_token") or None


def request_token(request, prefetched: dict | None = None, touch: bool = True) -> tuple[bool, TokenInfo | None]:
    """(whether a token was presented, the valid token or None); a valid token's use is recorded unless
    the caller does it (touch=False)."""
    raw = presented_token(request)
    if raw is None:
        return False, None
    token = token_authenticate(token=raw, prefetched=prefetched)
    if token is not None and touch:
        token_touch(token_id=token.id)
    return True, token


class TokenUser:
    """request.user for a call made with an API token: signed in, but not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, token: TokenInfo):
        self.token = token
        self.username = token.caller

    def __str__(self):
        return self.username


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """DRF authentication for the management API; a bad token is a 401, never a silent anonymous call."""

    def authenticate(self, request):
        presented, token = request_token(request._request)
        if not presented:
            return None
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        return TokenUser(token), token

    def authenticate_header(self, request):
        return REALM
