"""Test settings: their own Redis database, key prefix and queue names, and PostgreSQL when it answers."""
import os
import socket


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


os.environ.setdefault("ENGINE_ROOM_TESTING", "1")
os.environ.setdefault("ENGINE_ROOM_QUEUE_PREFIX", "test-")
os.environ.setdefault("ENGINE_ROOM_CACHE_PREFIX", "er-test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("ENGINE_ROOM_HTTP_ALLOW", "127.0.0.1,::1")
os.environ.setdefault("ENGINE_ROOM_DB_APPLICATION_NAME", "engine_room_test")
# ENGINE_ROOM_TEST_DB=sqlite forces the embedded database (make test runs the datastore tests on both).
if "DATABASE_URL" not in os.environ:
    if os.environ.get("ENGINE_ROOM_TEST_DB") != "sqlite" and _answers("127.0.0.1", 5432):
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/test"
    else:
        os.environ["ENGINE_ROOM_TEST_DB"] = "sqlite"

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
