"""config/wsgi.py: workflow calls through WEBHOOK_MIDDLEWARE with every security header, pages through MIDDLEWARE."""
import json

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from django.urls import Resolver404, resolve

from api_endpoints.webhooks import WorkflowCallApi
from config.wsgi import application
from tests.conftest import requests_in_test_transaction

from .conftest import bearer

pytestmark = pytest.mark.django_db

HEADERS = ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy",
           "Content-Security-Policy")
CALLS = ["/api/wf/hook", "/api/wf/hook/", "/api/1.1/wf/hook", "/version-test/api/wf/hook",
         "/version-test/api/1.1/wf/hook/", "/api/wf/h\u00e9;x", "/api/wf/hook\n"]
OTHERS = ["/api/wf/hook/initialize", "/api/wf/", "/api/workflows", "/workflows/", "/accounts/login/",
          "/api/wf/hook/extra", "/api/1x1/wf/hook", "/api/wf/hook//"]


def served(method: str, path: str, body: dict | None = None, **extra) -> tuple[int, dict, bytes]:
    """The status, headers (name -> values) and body that config.wsgi.application answers with."""
    factory = RequestFactory()
    if method == "post":
        request = factory.post(path, json.dumps(body or {}), content_type="application/json", **extra)
    else:
        request = factory.get(path, **extra)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), headers

    with requests_in_test_transaction():
        response = application(request.environ, start_response)
        content = b"".join(response)
        response.close()
    headers = {}
    for name, value in answer["headers"]:
        headers.setdefault(name, []).append(value)
    return answer["status"], headers, content


@pytest.mark.parametrize("path", CALLS)
def test_a_call_path_takes_the_short_list_and_is_routed_to_a_call(path):
    """The short list serves exactly what the URLconf routes to a workflow call."""
    assert application.is_call(path)
    assert resolve(path).func.view_class is WorkflowCallApi


@pytest.mark.parametrize("path", OTHERS)
def test_other_paths_take_the_whole_list(path):
    assert not application.is_call(path)
    try:
        assert resolve(path).func.__dict__.get("view_class") is not WorkflowCallApi
    except Resolver404:
        pass


def test_the_short_list_is_the_whole_one_without_the_browsers():
    """A middleware added to MIDDLEWARE applies to calls too; loading the short list left MIDDLEWARE whole."""
    assert settings.WEBHOOK_MIDDLEWARE == [name for name in settings.MIDDLEWARE
                                           if name not in settings.BROWSER_ONLY_MIDDLEWARE]
    assert "django.contrib.sessions.middleware.SessionMiddleware" in settings.MIDDLEWARE
    assert "config.csp.ContentSecurityPolicyMiddleware" in settings.WEBHOOK_MIDDLEWARE


def test_a_call_keeps_every_security_header_and_skips_the_session(make_workflow, admin_token):
    """A call answers as before, with the security headers of the whole list; a stale session cookie it
    carries is left alone (the whole list would answer with a Set-Cookie deleting it)."""
    make_workflow("hook", parameters=[{"name": "n", "type": "integer", "required": True}], response="async")
    stale = {"HTTP_COOKIE": "sessionid=stale"}
    status, headers, body = served("post", "/api/wf/hook", {"n": 3}, **bearer(admin_token), **stale)
    assert status == 202 and json.loads(body)["status"] == "queued"
    whole = Client(HTTP_COOKIE="sessionid=stale").post("/api/wf/nothing")
    assert {name: headers[name] for name in HEADERS} == {name: [whole[name]] for name in HEADERS}
    assert headers["X-Frame-Options"] == ["DENY"] and "default-src 'self'" in headers["Content-Security-Policy"][0]
    assert "Set-Cookie" not in headers and "Cookie" not in headers.get("Vary", [""])[0]
    assert whole.cookies["sessionid"].value == ""  # the whole list's session middleware deleted it
    bad_status, _, bad_body = served("post", "/api/wf/hook", {"n": "three"}, **bearer(admin_token))
    assert bad_status == 400 and "n" in json.loads(bad_body)["fields"]


def test_pages_and_detect_data_keep_login_sessions_and_csrf(make_workflow, session_client):
    """Pages still ask for a login, and an editor's session still works for Detect data."""
    status, headers, _ = served("get", "/workflows/")
    assert status == 302 and headers["Location"][0].startswith("/accounts/login/?next=")
    make_workflow("hook")
    editor = session_client("editor")
    cookie = f"csrftoken={'b' * 32}; sessionid={editor.cookies['sessionid'].value}"
    status, _, body = served("post", "/api/wf/hook/initialize", {"n": 1}, HTTP_COOKIE=cookie,
                             HTTP_X_CSRFTOKEN="b" * 32)
    assert status == 200 and json.loads(body)["parameters"] == [{"name": "n", "type": "integer", "list": False}]
    # Without the CSRF token the session is refused (by the view's own check, as the management API's).
    status, _, _ = served("post", "/api/wf/hook/initialize", {"n": 1}, HTTP_COOKIE=cookie)
    assert status == 403


def test_the_policy_built_once_follows_the_setting():
    """config.csp reuses a policy without a nonce, but a changed SECURE_CSP is the one sent."""
    before = Client().post("/api/wf/nothing")["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in before
    with override_settings(SECURE_CSP={"default-src": ["'none'"]}):
        assert Client().post("/api/wf/nothing")["Content-Security-Policy"] == "default-src 'none'"
    assert Client().post("/api/wf/nothing")["Content-Security-Policy"] == before
