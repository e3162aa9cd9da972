"""Who may reach what: every URL pattern walked as an anonymous visitor, a viewer and a limited token.

Anonymous visitors get the login page (pages) or a 401 (API, endpoints); viewers see the pages but
every change they try is refused (403, or 405 where the route has no such method) and nothing
changes; a token limited to one workflow reaches only that workflow and its runs.
"""
import json

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from api_endpoints.models import ApiToken
from datastore.models import DataType, Record
from logs.models import WorkflowRun
from scheduler.models import Batch, RecurringEvent, ScheduledRun
from workflows.models import Secret, Workflow

from .conftest import bearer
from .routes import OWN_ACCOUNT, PUBLIC_PAGES, READ_ONLY_POSTS, TOKEN_ROUTES_PREFIXES, url_of, walk

pytestmark = pytest.mark.django_db

def snapshot() -> tuple:
    """Everything a refused change must leave as it was."""
    return (
        list(Workflow.objects.order_by("id").values_list("name", "enabled", "revision", "live_version_id")),
        list(DataType.objects.order_by("id").values_list("name", "fields")),
        list(Record.objects.order_by("id").values_list("id", "data")),
        list(WorkflowRun.objects.order_by("id").values_list("id", "status", "cancel_requested")),
        list(ApiToken.objects.order_by("id").values_list("id", "revoked_at")),
        list(Secret.objects.order_by("id").values_list("name", "ciphertext")),
        list(RecurringEvent.objects.order_by("id").values_list("id", "enabled", "frequency")),
        list(ScheduledRun.objects.order_by("id").values_list("id", "status")),
        list(Batch.objects.order_by("id").values_list("id", "cancelled")),
        list(Group.objects.order_by("id").values_list("name", "user")),
    )


def test_every_route_is_walked(world):
    names = {name for name, _ in walk()}
    # A new page or endpoint joins this walk by being a named route; these must be among them.
    assert {"workflows-page", "workflow-edit", "logs-run", "settings-secrets", "scheduler-recurring-change",
            "data-record-delete", "api-workflows", "workflow-endpoint", "settings-audit", "metrics"} <= names


def test_anonymous_visitors_get_the_login_page_or_a_401(world):
    client = Client(raise_request_exception=False)
    problems = []
    for name, pattern in walk():
        url = url_of(name, pattern, world)
        for method in ("GET", "POST"):
            response = client.generic(method, url)
            status = response.status_code
            if name in PUBLIC_PAGES or name in OWN_ACCOUNT:
                ok = status != 500  # /healthz may well say 503 here: no worker runs in this test
            elif name in ("api-schema", "api-docs"):
                ok = status in (401, 403)
            elif name.startswith(TOKEN_ROUTES_PREFIXES) or name == "metrics":
                ok = status == 405 or status in (401, 403) and response["Content-Type"].startswith("application/json")
            else:
                ok = status == 302 and response["Location"].startswith("/accounts/login/?next=")
            if not ok:
                problems.append(f"{method} {url} ({name}) -> {status}")
    assert not problems, "\n".join(problems)


def test_a_viewer_sees_every_page_but_changes_nothing(world):
    client = Client(raise_request_exception=False)
    client.force_login(world["viewer"])
    before = snapshot()
    problems = []
    for name, pattern in walk():
        if name.startswith(TOKEN_ROUTES_PREFIXES) or name in PUBLIC_PAGES or name in OWN_ACCOUNT:
            continue
        url = url_of(name, pattern, world)
        response = client.get(url)
        if response.status_code >= 500 or response.status_code == 302:
            problems.append(f"GET {url} ({name}) -> {response.status_code}")
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.generic(method, url, "action=delete&ids=x&role=admin",
                                      content_type="application/x-www-form-urlencoded")
            if response.status_code not in (403, 405) and not (name in READ_ONLY_POSTS and response.status_code < 300):
                problems.append(f"{method} {url} ({name}) -> {response.status_code}")
    assert not problems, "\n".join(problems)
    assert snapshot() == before


def test_a_viewer_session_cannot_change_anything_through_the_api(world):
    client = Client(raise_request_exception=False)
    client.force_login(world["viewer"])
    before = snapshot()
    problems = []
    for name, pattern in walk():
        if not name.startswith("api-") or name in ("api-schema", "api-docs"):
            continue
        url = url_of(name, pattern, world)
        # Reading is allowed; tokens and secrets are admin-only even to read (403), and a route that
        # only changes things refuses a viewer before it looks at the method (403 rather than 405).
        status = client.get(url).status_code
        if status != 200 and not (status == 403 and (name.startswith(("api-token", "api-secret"))
                                                     or name.endswith(("publish", "test-run", "cancel", "rerun",
                                                                       "pause", "resume")))):
            problems.append(f"GET {url} ({name}) -> {status}")
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.generic(method, url, json.dumps({"name": "x", "value": "v"}),
                                      content_type="application/json")
            if response.status_code not in (403, 405):
                problems.append(f"{method} {url} ({name}) -> {response.status_code}")
    assert not problems, "\n".join(problems)
    assert snapshot() == before


def test_a_limited_token_reaches_only_its_workflow_and_its_runs(world):
    client = Client(raise_request_exception=False)
    token = bearer(world["limited"])
    problems = []
    for name, pattern in walk():
        if not name.startswith("api-"):
            continue
        url = url_of(name, pattern, world)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            status = client.generic(method, url, "{}", content_type="application/json", **token).status_code
            allowed = (name in ("api-runs", "api-run") and method == "GET")
            if allowed and status != 200 or not allowed and status not in (403, 405):
                problems.append(f"{method} {url} ({name}) -> {status}")
    assert not problems, "\n".join(problems)
    runs = client.get("/api/runs/", **token).json()["results"]
    assert [run["id"] for run in runs] == [str(world["run"].id)]
    assert client.get(f"/api/runs/{world['other_run'].id}/", **token).status_code in (403, 404)
    assert client.post("/api/wf/lead", {"n": 1}, **token).status_code == 202
    assert client.post("/api/wf/other", {}, **token).status_code == 403
    assert client.post("/version-test/api/wf/lead", {"n": 1}, **token).status_code == 403
    assert client.get("/metrics", **token).status_code == 401


def test_admin_is_staff_only(world, make_user):
    client = Client()
    client.force_login(world["viewer"])
    assert client.get("/admin/").status_code == 302
    client.force_login(make_user("admin", username="boss"))
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/audit/auditevent/").status_code == 200
