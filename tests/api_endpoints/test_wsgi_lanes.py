"""config/wsgi.py: workflow calls go through the short WEBHOOK_MIDDLEWARE list, everything else through
MIDDLEWARE; the calls keep every security header, and a session still works where it is meant to."""
import json
from http.cookies import SimpleCookie

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, RequestFactory, override_settings

from config.wsgi import application

from .conftest import bearer

pytestmark = pytest.mark.django_db

HEADERS = ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy",
           "Content-Security-Policy")


def served(method: str, path: str, body: dict | None = None, **extra) -> tuple[int, dict, bytes]:
    """The status, headers and body that config.wsgi.application answers with."""
    factory = getattr(RequestFactory(), method)
    request = factory(path, json.dumps(body or {}), content_type="application/json", **extra) \
        if method == "post" else factory(path, **extra)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), headers

    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(request.environ, start_response)
        content = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    headers = {}
    for name, value in answer["headers"]:
        headers.setdefault(name, []).append(value)
    return answer["status"], headers, content


@pytest.mark.parametrize("path", ["/api/wf/hook", "/api/wf/hook/", "/api/1.1/wf/hook",
                                  "/version-test/api/wf/hook", "/version-test/api/1.1/wf/hook/"])
def test_every_workflow_call_path_takes_the_short_list(path):
    assert application.call_path(path)


@pytest.mark.parametrize("path", ["/api/wf/hook/initialize", "/api/wf/", "/api/workflows", "/workflows/",
                                  "/accounts/login/", "/api/wf/hook/extra"])
def test_other_paths_take_the_whole_list(path):
    assert not application.call_path(path)


def test_a_call_keeps_every_security_header_and_sets_no_cookie(make_workflow, admin_token):
    """The call answers as before, with the headers a page gets (the same policy, no nonce) and no cookie."""
    make_workflow("hook", parameters=[{"name": "n", "type": "integer", "required": True}], response="async")
    status, headers, body = served("post", "/api/wf/hook", {"n": 3}, **bearer(admin_token))
    assert status == 202 and json.loads(body)["status"] == "queued"
    # The same headers as the whole list gives a call (the policy without a nonce, as no script runs here).
    whole = Client().post("/api/wf/nothing")
    assert {name: headers[name] for name in HEADERS} == {name: [whole[name]] for name in HEADERS}
    assert headers["X-Frame-Options"] == ["DENY"] and "default-src 'self'" in headers["Content-Security-Policy"][0]
    assert "Set-Cookie" not in headers
    bad_status, _, bad_body = served("post", "/api/wf/hook", {"n": "three"}, **bearer(admin_token))
    assert bad_status == 400 and "n" in json.loads(bad_body)["fields"]


def test_pages_and_detect_data_keep_sessions_and_csrf(make_workflow, session_client):
    """The login page still sets its CSRF cookie, and an editor's session still works for Detect data."""
    status, headers, _ = served("get", "/accounts/login/")
    assert status == 200 and any(cookie.startswith("csrftoken=") for cookie in headers["Set-Cookie"])
    make_workflow("hook")
    editor = session_client("editor")
    cookies = SimpleCookie({"csrftoken": "b" * 32, **{name: morsel.value for name, morsel in editor.cookies.items()}})
    cookie_header = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
    status, _, body = served("post", "/api/wf/hook/initialize", {"n": 1}, HTTP_COOKIE=cookie_header,
                             HTTP_X_CSRFTOKEN="b" * 32)
    assert status == 200 and json.loads(body)["parameters"] == [{"name": "n", "type": "integer", "list": False}]
    status, _, _ = served("post", "/api/wf/hook/initialize", {"n": 1}, HTTP_COOKIE=cookie_header)
    assert status == 403  # without the CSRF token the session is refused, as on every page


def test_the_policy_built_once_follows_the_setting():
    """config.csp reuses a policy without a nonce, but a changed SECURE_CSP is the one sent."""
    before = Client().post("/api/wf/nothing")["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in before
    with override_settings(SECURE_CSP={"default-src": ["'none'"]}):
        assert Client().post("/api/wf/nothing")["Content-Security-Policy"] == "default-src 'none'"
    assert Client().post("/api/wf/nothing")["Content-Security-Policy"] == before
