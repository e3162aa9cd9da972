"""Sign-in throttling: failures per username and address lock that pair out (even with the right
password), with a 429 that says why; other people and addresses are unaffected; the admin login too."""
import pytest
from django.core.cache import cache
from django.test import Client

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only"


@pytest.fixture(autouse=True)
def _clean_counters():
    cache.clear()
    yield
    cache.clear()


def sign_in(username, password, ip="203.0.113.9", path="/accounts/login/"):
    return Client(REMOTE_ADDR=ip).post(path, {"username": username, "password": password})


def test_five_failures_lock_that_username_from_that_address(make_user, settings):
    make_user("editor", username="ada")
    for _ in range(settings.ENGINE_ROOM_LOGIN_MAX_FAILURES):
        assert sign_in("ada", "wrong").status_code == 200  # the form again, with its error

    locked = sign_in("ada", PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(settings.ENGINE_ROOM_LOGIN_LOCKOUT_SECONDS)
    assert b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in locked.wsgi_request.session

    # The same person from elsewhere, and someone else from here, still sign in.
    assert sign_in("ada", PASSWORD, ip="198.51.100.4").status_code == 302
    make_user("viewer", username="bob")
    assert sign_in("bob", PASSWORD).status_code == 302
    # The Django admin's login goes through the same backend: refused too (its form shows the error).
    admin_login = sign_in("ada", PASSWORD, path="/admin/login/")
    assert admin_login.status_code == 200 and "_auth_user_id" not in admin_login.wsgi_request.session
    assert AuditEvent.objects.filter(action="login_throttled", target="user ada").count() == 1


def test_a_good_password_clears_the_count(make_user, settings):
    make_user("editor", username="ada")
    for _ in range(settings.ENGINE_ROOM_LOGIN_MAX_FAILURES - 1):
        sign_in("ada", "wrong")
    assert sign_in("ada", PASSWORD).status_code == 302
    for _ in range(settings.ENGINE_ROOM_LOGIN_MAX_FAILURES - 1):
        sign_in("ada", "wrong")
    assert sign_in("ada", PASSWORD).status_code == 302


def test_many_usernames_from_one_address_lock_the_address(make_user, settings):
    settings.ENGINE_ROOM_LOGIN_MAX_FAILURES_PER_IP = 8
    make_user("editor", username="ada")
    for index in range(8):
        sign_in(f"guess{index}", "wrong")
    assert sign_in("ada", PASSWORD).status_code == 429
    assert sign_in("ada", PASSWORD, ip="198.51.100.4").status_code == 302


def test_the_throttle_fails_open_without_the_cache(make_user, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    make_user("editor", username="ada")
    for _ in range(settings.ENGINE_ROOM_LOGIN_MAX_FAILURES + 1):
        sign_in("ada", "wrong")
    assert sign_in("ada", PASSWORD).status_code == 302
