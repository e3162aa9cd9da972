"""Sign-in throttling: failed sign-ins are counted in the cache per username and IP, and per IP.

The authentication backend enforces the limit, so that every sign-in path (the login page, the
Django admin) is covered; the login view says why it refuses, with a 429 and Retry-After. Like the
API's rate limits, the counters fail open when the cache (Redis) is unreachable.
"""
import hashlib
import logging

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.forms.utils import ErrorDict
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)


def client_ip(request) -> str:
    """The client address, trusting X-Forwarded-For only as far as REST_FRAMEWORK's NUM_PROXIES says."""
    try:
        return BaseThrottle().get_ident(request) or "unknown"
    except Exception:
        return request.META.get("REMOTE_ADDR") or "unknown"


def _keys(request, username) -> tuple[str, str]:
    ip = client_ip(request)
    # Hashed: usernames typed by strangers are not kept in Redis as they were typed.
    who = hashlib.sha256(str(username or "").strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:user:{who}:{ip}", f"login-fail:ip:{ip}"


def login_blocked(request, username) -> bool:
    """Whether sign-ins for this username from this address (or any from this address) are refused now."""
    user_key, ip_key = _keys(request, username)
    try:
        counts = cache.get_many([user_key, ip_key])
    except Exception:  # cache unreachable: fail open
        logger.warning("Login throttle cache unavailable; not limiting", exc_info=True)
        return False
    return (counts.get(user_key, 0) >= settings.ENGINE_ROOM_LOGIN_MAX_FAILURES
            or counts.get(ip_key, 0) >= settings.ENGINE_ROOM_LOGIN_MAX_FAILURES_PER_IP)


def login_failure_record(request, username) -> None:
    """Count one failed sign-in; the counters expire ENGINE_ROOM_LOGIN_LOCKOUT_SECONDS after the first."""
    timeout = settings.ENGINE_ROOM_LOGIN_LOCKOUT_SECONDS
    for key in _keys(request, username):
        try:
            cache.add(key, 0, timeout)
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout)
        except Exception:
            logger.warning("Login throttle cache unavailable; failure not counted", exc_info=True)
            return


def login_success_record(request, username) -> None:
    """A good password clears this username's counter from this address (not the address's own)."""
    try:
        cache.delete(_keys(request, username)[0])
    except Exception:
        pass


class ThrottledModelBackend(ModelBackend):
    """Django's model backend, refusing outright (even a right password) while a sign-in is throttled."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # not a sign-in over HTTP (a management command, a test helper)
            return super().authenticate(request, username=username, password=password, **kwargs)
        if login_blocked(request, username):
            _audit_throttled(request, username)
            # PermissionDenied stops authenticate() from trying further backends.
            raise PermissionDenied("Too many failed sign-ins.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failure_record(request, username)
        else:
            login_success_record(request, username)
        return user


def _audit_throttled(request, username) -> None:
    from audit.models import AuditAction
    from audit.services import audit_record

    # Once per lockout period and address, so that a flood of attempts is not a flood of rows.
    marker = f"login-throttled-logged:{_keys(request, username)[0]}"
    try:
        first = cache.add(marker, 1, settings.ENGINE_ROOM_LOGIN_LOCKOUT_SECONDS)
    except Exception:
        first = True
    if first:
        audit_record(action=AuditAction.LOGIN_THROTTLED, target=f"user {str(username or '')[:140]}",
                     actor_name="", request=request)


class ThrottledLoginView(LoginView):
    """The login page: a throttled sign-in gets a 429 with Retry-After and a message saying why."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        if not login_blocked(request, username):
            return super().post(request, *args, **kwargs)
        minutes = max(1, settings.ENGINE_ROOM_LOGIN_LOCKOUT_SECONDS // 60)
        # Not validated: that would try the password (and count another failure) just to refuse it.
        form = self.get_form_class()(request, initial={"username": username})
        form._errors = ErrorDict({NON_FIELD_ERRORS: form.error_class([
            f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        ])})
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(settings.ENGINE_ROOM_LOGIN_LOCKOUT_SECONDS)
        return response
