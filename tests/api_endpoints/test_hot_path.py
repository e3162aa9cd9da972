"""The hot path stays lean: one authenticated async call costs a small fixed number of queries."""
import hashlib
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from .conftest import bearer

# A real transaction (not the test case's savepoint) so the statements counted are the ones production runs.
pytestmark = pytest.mark.django_db(transaction=True)


def _call(token, body):
    return Client().post("/api/wf/echo", json.dumps(body), content_type="application/json", **bearer(token))


@pytest.mark.parametrize("count", [1, 40])
def test_async_call_query_count_does_not_grow_with_parameters(make_workflow, make_token, count):
    """After the first call warms the caches, a limited-token async call is one autocommitted INSERT,
    however many parameters the workflow has."""
    parameters = [{"name": f"p{index}", "type": "integer"} for index in range(count)]
    make_workflow(parameters=parameters)
    token = make_token("caller", ["echo"])
    body = {f"p{index}": index for index in range(count)}
    assert _call(token, body).status_code == 202  # warms the token, workflow and definition caches
    with CaptureQueriesContext(connection) as queries:
        response = _call(token, body)
    assert response.status_code == 202
    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    assert statements == ["INSERT"], [query["sql"][:120] for query in queries.captured_queries]


def test_cold_call_reads_token_workflow_and_definition_once(make_workflow, admin_token):
    """With cold caches a call also reads the token (noting its use), the workflow and its version: five in all."""
    make_workflow(parameters=[{"name": "a", "type": "text"}])
    with CaptureQueriesContext(connection) as queries:
        assert _call(admin_token, {"a": "x"}).status_code == 202
    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    assert statements == ["SELECT", "UPDATE", "SELECT", "SELECT", "INSERT"], statements


CACHE_COMMANDS = (b"GET", b"MGET", b"SET", b"INCRBY", b"EXISTS", b"EXPIRE", b"DEL", b"MULTI")


def test_warm_call_is_one_cache_round_trip(make_workflow, make_token, monkeypatch):
    """A warm async call reads its token and workflow and counts its rate-limit window in one Redis round
    trip, one command (config.cache's script); no other cache command goes out."""
    import redis.connection

    from config.cache import _GET_MANY_AND_COUNT

    script = hashlib.sha1(_GET_MANY_AND_COUNT.encode()).hexdigest().encode()
    make_workflow()
    token = make_token("caller", ["echo"])
    assert _call(token, {}).status_code == 202
    round_trips = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        chunks = [command] if isinstance(command, bytes | str) else list(command)
        payload = b"".join(chunk.encode() if isinstance(chunk, str) else bytes(chunk) for chunk in chunks)
        names = [name for name in CACHE_COMMANDS if b"\r\n" + name + b"\r\n" in payload]
        round_trips.append(names + ([b"script"] if script in payload else []))
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    assert _call(token, {}).status_code == 202
    cache_trips = [names for names in round_trips if names]
    assert cache_trips == [[b"script"]], round_trips


def test_the_rate_limit_window_counts_and_expires(settings):
    """The one-command read counts the window from 1, gives it the window's TTL on its first count, and
    returns the keys' values (a missing one left out)."""
    from django.core.cache import cache

    from config.cache import get_many_and_count, redis_client

    cache.set("hot-path-a", {"x": 1})
    counter = "hot-path-window"
    cache.delete(counter)
    counts = [get_many_and_count(["hot-path-a", "hot-path-missing"], counter, 30) for _ in range(3)]
    assert counts == [({"hot-path-a": {"x": 1}}, 1), ({"hot-path-a": {"x": 1}}, 2), ({"hot-path-a": {"x": 1}}, 3)]
    assert get_many_and_count([], counter, 30) == ({}, 4)
    assert get_many_and_count(["hot-path-a"], None, 30) == ({"hot-path-a": {"x": 1}}, None)
    ttl = redis_client(1.0).ttl(cache.make_and_validate_key(counter))
    assert 0 < ttl <= 30
