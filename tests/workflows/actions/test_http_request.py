"""http_request: its Config and run() against a real HTTP server on loopback."""
import json
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from config.errors import ActionError, ErrorCode
from workflows import expressions
from workflows.actions.http_request import HttpRequest
from workflows.outbound import OutboundBlockedError

action = HttpRequest()


def validated(config: dict) -> dict:
    return action.validate_runtime(config)


def call(config: dict, context) -> dict:
    return action.run(config=validated(config), context=context)


# --- Config ---------------------------------------------------------------------------------


def test_example_is_valid():
    assert HttpRequest.Config(data=HttpRequest.example).is_valid()


def test_defaults():
    config = validated({"url": "https://api.example.com/x"})
    assert config["method"] == "GET"
    assert "timeout_seconds" not in config and "expect_status" not in config


def test_url_is_required():
    serializer = HttpRequest.Config(data={"method": "GET"})
    assert not serializer.is_valid()
    assert "url" in serializer.errors


def test_unknown_key_is_refused():
    serializer = HttpRequest.Config(data={"url": "https://api.example.com", "header": {"a": "b"}})
    assert not serializer.is_valid()
    assert serializer.errors["header"] == ["unknown key"]


@pytest.mark.parametrize(
    "config, field",
    [
        ({"url": "ftp://example.com/file"}, "url"),
        ({"url": "example.com/path"}, "url"),
        ({"url": "https://example.com", "method": "FETCH"}, "method"),
        ({"url": "https://example.com", "headers": ["X-A: b"]}, "headers"),
        ({"url": "https://example.com", "headers": {"X-A": "b\r\nX-Injected: 1"}}, "headers"),
        ({"url": "https://example.com", "query": "a=1"}, "query"),
        ({"url": "https://example.com", "form": "a=1"}, "form"),
        ({"url": "https://example.com", "timeout_seconds": 0}, "timeout_seconds"),
        ({"url": "https://example.com", "timeout_seconds": "soon"}, "timeout_seconds"),
        ({"url": "https://example.com", "expect_status": "ok"}, "expect_status"),
        ({"url": "https://example.com", "expect_status": [200, 700]}, "expect_status"),
        ({"url": "https://example.com", "expect_status": []}, "expect_status"),
        ({"url": "https://example.com", "json": {"a": 1}, "body": "x"}, "json"),
    ],
)
def test_bad_values_are_refused_naming_the_field(config, field):
    with pytest.raises(ActionError) as caught:
        validated(config)
    assert field in caught.value.extra["fields"]


def test_method_is_case_insensitive_and_expect_status_becomes_a_list():
    config = validated({"url": "https://example.com", "method": "post", "expect_status": 201})
    assert config["method"] == "POST"
    assert config["expect_status"] == [201]


# --- run() ----------------------------------------------------------------------------------


def test_json_response_is_parsed(httpserver, make_context):
    httpserver.expect_request("/orders/7").respond_with_json({"id": 7, "paid": True}, headers={"X-Rate": "9"})

    output = call({"url": httpserver.url_for("/orders/7")}, make_context())

    assert output["status"] == 200
    assert output["body"] == {"id": 7, "paid": True}
    assert output["headers"]["x-rate"] == "9"
    assert output["headers"]["content-type"] == "application/json"


def test_text_response_stays_text(httpserver, make_context):
    httpserver.expect_request("/hello").respond_with_data("héllo, {not json}", content_type="text/plain; charset=utf-8")

    output = call({"url": httpserver.url_for("/hello")}, make_context())

    assert output["body"] == "héllo, {not json}"


def test_headers_query_and_json_are_sent_with_idempotency_key(httpserver, make_context):
    context = make_context()
    httpserver.expect_request(
        "/orders",
        method="POST",
        query_string="dry=true&tag=a&tag=b",
        headers={"Authorization": "Bearer t0k", "Idempotency-Key": f"{context.run.id}:0"},
        json={"order": 7, "items": [1, 2]},
    ).respond_with_json({"ok": True}, status=201)

    output = call(
        {
            "method": "POST",
            "url": httpserver.url_for("/orders"),
            "headers": {"Authorization": "Bearer t0k"},
            "query": {"dry": True, "tag": ["a", "b"]},
            "json": {"order": 7, "items": [1, 2]},
        },
        context,
    )

    assert output["status"] == 201
    assert output["body"] == {"ok": True}


def test_idempotency_key_set_in_config_wins(httpserver, make_context):
    httpserver.expect_request("/x", headers={"Idempotency-Key": "mine"}).respond_with_data("ok")

    output = call(
        {"url": httpserver.url_for("/x"), "headers": {"idempotency-key": "mine"}}, make_context()
    )

    assert output["body"] == "ok"
    (request, _), = httpserver.log
    assert request.headers.getlist("Idempotency-Key") == ["mine"]


def test_form_body_is_sent(httpserver, make_context):
    httpserver.expect_request(
        "/form", method="PUT", data="name=Ann+Lee&vip=true", headers={"Content-Type": "application/x-www-form-urlencoded"}
    ).respond_with_data("saved")

    output = call(
        {"method": "PUT", "url": httpserver.url_for("/form"), "form": {"name": "Ann Lee", "vip": True}},
        make_context(),
    )

    assert output["body"] == "saved"


def test_text_body_is_sent_as_utf8(httpserver, make_context):
    httpserver.expect_request(
        "/raw", method="PATCH", data="línea 1\nline 2".encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
    ).respond_with_data("", status=204)

    output = call({"method": "PATCH", "url": httpserver.url_for("/raw"), "body": "línea 1\nline 2"}, make_context())

    assert output == {"status": 204, "headers": output["headers"], "body": None}


def test_head_request(httpserver, make_context):
    httpserver.expect_request("/h", method="HEAD").respond_with_data("", headers={"X-Count": "3"})

    output = call({"method": "head", "url": httpserver.url_for("/h")}, make_context())

    assert output["status"] == 200 and output["headers"]["x-count"] == "3" and output["body"] is None


def test_expect_status_accepts_a_listed_non_2xx(httpserver, make_context):
    httpserver.expect_request("/missing").respond_with_json({"error": "gone"}, status=404)

    output = call({"url": httpserver.url_for("/missing"), "expect_status": [200, 404]}, make_context())

    assert output["status"] == 404 and output["body"] == {"error": "gone"}


def test_status_outside_expect_status_fails_without_retry(httpserver, make_context):
    httpserver.expect_request("/created").respond_with_data("fine", status=200)

    with pytest.raises(ActionError) as caught:
        call({"url": httpserver.url_for("/created"), "expect_status": 201}, make_context())

    assert "HTTP 200" in caught.value.message and "fine" in caught.value.message
    assert caught.value.retryable is False


@pytest.mark.parametrize("status, retryable", [(500, True), (503, True), (429, True), (404, False), (400, False)])
def test_error_statuses_name_status_and_body_and_say_if_retryable(httpserver, make_context, status, retryable):
    httpserver.expect_request("/fail").respond_with_data("upstream says no " + "x" * 500, status=status)

    with pytest.raises(ActionError) as caught:
        call({"url": httpserver.url_for("/fail")}, make_context())

    error = caught.value
    assert error.code == ErrorCode.HTTP_FAILED
    assert error.retryable is retryable
    assert f"HTTP {status}" in error.message
    assert "upstream says no" in error.message
    assert len(error.message) < 300
    assert error.extra["status"] == status


def test_timeout_is_retryable(httpserver, make_context):
    def slow(request):
        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)

    started = time.monotonic()
    with pytest.raises(ActionError) as caught:
        call({"url": httpserver.url_for("/slow"), "timeout_seconds": 0.3}, make_context())

    assert time.monotonic() - started < 1.2
    assert caught.value.retryable is True
    assert "timed out" in caught.value.message


def test_run_deadline_caps_the_timeout(httpserver, make_context):
    def slow(request):
        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)

    started = time.monotonic()
    with pytest.raises(ActionError, match="timed out"):
        call(
            {"url": httpserver.url_for("/slow"), "timeout_seconds": 30},
            make_context(deadline=time.monotonic() + 0.3),
        )
    assert time.monotonic() - started < 1.2


def test_trickling_response_is_cut_at_the_timeout(httpserver, make_context):
    def trickle(request):
        def chunks():
            for _ in range(40):
                time.sleep(0.1)
                yield b"x"

        return Response(chunks(), content_type="text/plain")

    httpserver.expect_request("/trickle").respond_with_handler(trickle)

    started = time.monotonic()
    with pytest.raises(ActionError, match="timed out") as caught:
        call({"url": httpserver.url_for("/trickle"), "timeout_seconds": 0.6}, make_context())

    assert time.monotonic() - started < 1.5
    assert caught.value.retryable is True


def test_no_time_left_fails_before_sending(httpserver, make_context):
    with pytest.raises(ActionError) as caught:
        call({"url": httpserver.url_for("/never")}, make_context(deadline=time.monotonic() - 1))

    assert caught.value.code == ErrorCode.TIMEOUT
    assert httpserver.log == []


def test_response_larger_than_the_cap_fails(httpserver, make_context, settings):
    settings.ENGINE_ROOM_HTTP_MAX_RESPONSE_BYTES = 1000
    httpserver.expect_request("/big").respond_with_data("y" * 5000)

    with pytest.raises(ActionError, match="response larger than 1000 bytes") as caught:
        call({"url": httpserver.url_for("/big")}, make_context())
    assert caught.value.retryable is False


def test_streamed_response_without_length_stops_at_the_cap(httpserver, make_context, settings):
    settings.ENGINE_ROOM_HTTP_MAX_RESPONSE_BYTES = 1000
    produced = []

    def endless(request):
        def chunks():
            # Far more than loopback's socket buffers hold (~20 MB), so the server can only finish
            # if the client kept reading past the cap.
            for _ in range(200_000):
                produced.append(1)
                yield b"z" * 100

        return Response(chunks(), content_type="application/json")

    httpserver.expect_request("/stream").respond_with_handler(endless)

    with pytest.raises(ActionError, match="response larger than 1000 bytes"):
        call({"url": httpserver.url_for("/stream")}, make_context())
    assert len(produced) < 200_000


def test_response_at_the_cap_is_accepted(httpserver, make_context, settings):
    settings.ENGINE_ROOM_HTTP_MAX_RESPONSE_BYTES = 1000
    httpserver.expect_request("/exact").respond_with_data("y" * 1000)

    assert len(call({"url": httpserver.url_for("/exact")}, make_context())["body"]) == 1000


def test_redirects_are_followed(httpserver, make_context):
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/mid"})
    httpserver.expect_request("/mid").respond_with_data("", status=307, headers={"Location": httpserver.url_for("/new")})
    httpserver.expect_request("/new", headers={"Idempotency-Key": "k"}).respond_with_json({"here": True})

    output = call({"url": httpserver.url_for("/old"), "headers": {"Idempotency-Key": "k"}}, make_context())

    assert output["body"] == {"here": True}
    assert [request.path for request, _ in httpserver.log] == ["/old", "/mid", "/new"]


def test_303_after_post_turns_into_get_without_body(httpserver, make_context):
    httpserver.expect_request("/submit", method="POST").respond_with_data(
        "", status=303, headers={"Location": "/result"}
    )
    httpserver.expect_request("/result", method="GET").respond_with_data("done")

    output = call({"method": "POST", "url": httpserver.url_for("/submit"), "json": {"a": 1}}, make_context())

    assert output["body"] == "done"
    result_request = httpserver.log[-1][0]
    assert result_request.get_data() == b"" and "Content-Type" not in result_request.headers


def test_more_than_five_redirects_fail(httpserver, make_context):
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})

    with pytest.raises(ActionError, match="redirected more than 5 times"):
        call({"url": httpserver.url_for("/loop")}, make_context())
    assert len(httpserver.log) == 6


def test_redirect_to_a_blocked_address_is_refused(httpserver, make_context, loopback_only):
    httpserver.expect_request("/sneaky").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )

    with pytest.raises(OutboundBlockedError) as caught:
        call({"url": httpserver.url_for("/sneaky")}, make_context())

    error = caught.value
    assert error.code == ErrorCode.HTTP_BLOCKED and error.retryable is False
    assert "169.254.169.254" in error.message
    assert all(address[0] in ("127.0.0.1", "::1") for address in loopback_only)


def test_redirect_to_another_scheme_is_refused(httpserver, make_context):
    httpserver.expect_request("/file").respond_with_data("", status=302, headers={"Location": "file:///etc/passwd"})

    with pytest.raises(OutboundBlockedError, match="only http and https"):
        call({"url": httpserver.url_for("/file")}, make_context())


def test_authorization_is_dropped_when_redirected_to_another_host(httpserver, make_context):
    other = httpserver.url_for("/landing").replace("localhost", "127.0.0.1")
    httpserver.expect_request("/go").respond_with_data("", status=302, headers={"Location": other})
    httpserver.expect_request("/landing").respond_with_data("ok")

    call({"url": httpserver.url_for("/go"), "headers": {"Authorization": "Bearer secret"}}, make_context())

    first, last = httpserver.log[0][0], httpserver.log[-1][0]
    assert first.headers["Authorization"] == "Bearer secret"
    assert "Authorization" not in last.headers


SECRET = "sk_live_REDIRECTCANARY_91c"


@pytest.fixture
def other_host():
    """A second loopback server: another origin (its own port) for cross-host redirects."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def revealed():
    """A run's secret scope in which K has been read, as the engine sets it around a run."""
    secrets = expressions.SecretScope({"K": SECRET}.get)
    secrets.get("K")
    token = expressions.current_secrets.set(secrets)
    yield secrets
    expressions.current_secrets.reset(token)


def test_headers_holding_a_secret_are_dropped_on_a_redirect_to_another_host(httpserver, other_host, make_context,
                                                                             revealed):
    httpserver.expect_request("/go").respond_with_data("", status=307, headers={"Location": other_host.url_for("/b")})
    other_host.expect_request("/b").respond_with_data("ok")

    output = call({"url": httpserver.url_for("/go"), "headers": {
        "X-Api-Key": SECRET, "X-Signed": f"v1 {SECRET}", "Cookie": "session=1", "X-Plain": "kept"}}, make_context())

    assert output["body"] == "ok"
    first, (landed, _) = httpserver.log[0][0], other_host.log[0]
    assert first.headers["X-Api-Key"] == SECRET
    assert "X-Api-Key" not in landed.headers and "X-Signed" not in landed.headers and "Cookie" not in landed.headers
    assert landed.headers["X-Plain"] == "kept"


def test_a_body_holding_a_secret_is_not_resent_to_another_host(httpserver, other_host, make_context, revealed):
    httpserver.expect_request("/go", method="POST").respond_with_data(
        "", status=308, headers={"Location": other_host.url_for("/b")}
    )
    other_host.expect_request("/b").respond_with_data("ok")

    with pytest.raises(ActionError) as caught:
        call({"method": "POST", "url": httpserver.url_for("/go"), "json": {"key": SECRET}}, make_context())

    assert f"redirected (308) to 127.0.0.1:{other_host.port}, another origin" in caught.value.message
    assert caught.value.retryable is False and SECRET not in caught.value.message
    assert httpserver.log[0][0].get_json() == {"key": SECRET}
    assert other_host.log == []


def test_a_body_without_a_secret_follows_a_307_to_another_host(httpserver, other_host, make_context, revealed):
    httpserver.expect_request("/go", method="POST").respond_with_data(
        "", status=307, headers={"Location": other_host.url_for("/b")}
    )
    other_host.expect_request("/b", method="POST", json={"order": 7}).respond_with_data("ok")

    assert call({"method": "POST", "url": httpserver.url_for("/go"), "json": {"order": 7}}, make_context())["body"] == "ok"


def test_a_same_host_redirect_keeps_secret_headers_and_body(httpserver, make_context, revealed):
    httpserver.expect_request("/go", method="POST").respond_with_data("", status=307, headers={"Location": "/b"})
    httpserver.expect_request("/b", method="POST").respond_with_data("ok")

    call({"method": "POST", "url": httpserver.url_for("/go"), "headers": {"X-Api-Key": SECRET},
          "form": {"key": SECRET}}, make_context())

    landed = httpserver.log[-1][0]
    assert landed.path == "/b" and landed.headers["X-Api-Key"] == SECRET and landed.form["key"] == SECRET


def test_connection_refused_is_retryable(make_context):
    from tests.conftest import free_port

    with pytest.raises(ActionError) as caught:
        call({"url": f"http://127.0.0.1:{free_port()}/"}, make_context())

    assert caught.value.retryable is True
    assert caught.value.code == ErrorCode.HTTP_FAILED


def test_dry_run_sends_nothing_and_captures_the_request(httpserver, make_context):
    context = make_context(dry_run=True)

    output = call(
        {
            "method": "POST",
            "url": httpserver.url_for("/orders"),
            "query": {"page": 2},
            "headers": {"X-Shop": "s1"},
            "json": {"order": 7},
        },
        context,
    )

    assert output == {"status": None, "headers": {}, "body": None, "dry_run": True}
    assert httpserver.log == []
    (captured,) = context.captured
    assert captured["kind"] == "http_request"
    assert captured["method"] == "POST"
    assert captured["url"] == httpserver.url_for("/orders") + "?page=2"
    assert captured["headers"]["X-Shop"] == "s1"
    assert captured["headers"]["Idempotency-Key"] == context.idempotency_key
    assert captured["body"] == {"order": 7}
    assert json.loads(json.dumps(captured))  # the capture is stored in a JSON column
