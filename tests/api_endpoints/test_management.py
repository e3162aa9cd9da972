"""The management REST API: workflows, runs, data, tokens, secrets, roles, and manage.py create_token."""
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from api_endpoints.models import ApiToken
from datastore.services import data_type_create, record_create
from logs.models import WorkflowRun
from workflows.crypto import decrypt
from workflows.models import Secret, Workflow

from .conftest import bearer, definition

pytestmark = pytest.mark.django_db


class Api:
    """A JSON client for the management API with one set of credentials."""

    def __init__(self, client: Client, headers: dict | None = None):
        self.client, self.headers = client, headers or {}

    def call(self, method, path, body=None, **extra):
        kwargs = {**self.headers, **extra}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(self.client, method)(path, **kwargs)

    def get(self, path, **extra):
        return self.call("get", path, **extra)

    def post(self, path, body=None, **extra):
        return self.call("post", path, body if body is not None else {}, **extra)

    def put(self, path, body, **extra):
        return self.call("put", path, body, **extra)

    def patch(self, path, body, **extra):
        return self.call("patch", path, body, **extra)

    def delete(self, path, **extra):
        return self.call("delete", path, **extra)


@pytest.fixture
def admin_api(admin_token) -> Api:
    return Api(Client(), bearer(admin_token))


# --- Workflows --------------------------------------------------------------------------------


def test_workflow_create_read_replace_delete_by_name(admin_api):
    """A workflow is created from its JSON definition, read back whole, replaced with PUT and deleted."""
    created = admin_api.post("/api/workflows/", definition("orders", parameters=[{"name": "id", "type": "integer"}]))
    assert created.status_code == 201, created.content
    assert created.json()["definition"]["parameters"] == [{"name": "id", "type": "integer"}]
    assert created.json()["live_version"] is None and created.json()["endpoint"] == "http://testserver/api/wf/orders"
    read = admin_api.get("/api/workflows/orders")
    assert read.status_code == 200 and read.json()["definition"]["auth"] == "token"
    replaced = admin_api.put("/api/workflows/orders/", {**definition("orders"), "description": "Orders in"})
    assert replaced.status_code == 200 and replaced.json()["description"] == "Orders in"
    assert replaced.json()["revision"] == 2
    listed = admin_api.get("/api/workflows/")
    assert listed.json()["count"] == 1 and listed.json()["results"][0]["name"] == "orders"
    assert admin_api.delete("/api/workflows/orders/").status_code == 204
    assert admin_api.get("/api/workflows/orders/").status_code == 404
    assert not Workflow.objects.exists()


def test_workflow_errors_are_field_by_field(admin_api):
    """A bad definition is a 400 naming each field (steps[0].config.url), and unknown keys are named."""
    bad = definition("broken", steps=[
        {"key": "ok", "action": "set_values", "config": {"values": {}}},
        {"key": "call", "action": "http_request", "config": {"method": "GET"}},
        {"key": "what", "action": "no_such_action"},
    ], timeout_seconds=0)
    response = admin_api.post("/api/workflows/", bad)
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert "steps[1].config.url" in fields
    assert "steps[2].action" in fields
    assert "timeout_seconds" in fields
    typo = admin_api.post("/api/workflows/", {**definition("typo"), "enabeld": True})
    assert typo.status_code == 400 and "enabeld" in typo.json()["fields"]
    assert not Workflow.objects.exists()


def test_replace_with_a_stale_revision_is_a_conflict(admin_api):
    """PUT with If-Match of an older revision answers 409 instead of overwriting a newer save."""
    admin_api.post("/api/workflows/", definition("shared"))
    admin_api.put("/api/workflows/shared/", definition("shared", description="theirs"), HTTP_IF_MATCH='"1"')
    stale = admin_api.put("/api/workflows/shared/", definition("shared", description="mine"), HTTP_IF_MATCH='"1"')
    assert stale.status_code == 409 and stale.json()["error"] == "conflict"
    assert admin_api.get("/api/workflows/shared/").json()["description"] == "theirs"


def test_publish_makes_a_version_live_and_versions_lists_them(admin_api, admin_token):
    """Publish freezes the draft as version 1, 2…; the live endpoint then answers; versions are listed newest first."""
    admin_api.post("/api/workflows/", definition("pub"))
    assert Client().post("/api/wf/pub", **bearer(admin_token)).status_code == 404
    first = admin_api.post("/api/workflows/pub/publish/")
    second = admin_api.post("/api/workflows/pub/publish")
    assert first.status_code == 201 and first.json()["number"] == 1
    assert second.json()["number"] == 2
    assert Client().post("/api/wf/pub", **bearer(admin_token)).status_code == 202
    versions = admin_api.get("/api/workflows/pub/versions/").json()
    assert [v["number"] for v in versions["results"]] == [2, 1]
    assert [v["live"] for v in versions["results"]] == [True, False]


def test_test_run_executes_the_draft_and_returns_its_steps(admin_api):
    """test-run runs the draft in the request and answers with the finished run and each step."""
    admin_api.post("/api/workflows/", definition(
        "calc", parameters=[{"name": "n", "type": "integer", "required": True}],
        steps=[{"key": "double", "action": "set_values", "config": {"values": {"twice": "{{ params.n * 2 }}"}}},
               {"key": "answer", "action": "return_response", "config": {"status": 201, "body": {"n": "{{ steps.double.twice }}"}}}],
    ))
    response = admin_api.post("/api/workflows/calc/test-run/", {"params": {"n": 21}})
    assert response.status_code == 200, response.content
    run = response.json()
    assert run["status"] == "succeeded" and run["version"] == "draft" and run["trigger"] == "manual"
    assert [step["key"] for step in run["steps"]] == ["double", "answer"]
    assert run["steps"][0]["output"] == {"twice": 42}
    assert run["response"]["body"] == {"n": 42}
    bad = admin_api.post("/api/workflows/calc/test-run/", {"params": {"n": "many"}})
    assert bad.status_code == 400 and bad.json()["fields"] == {"n": "expected an integer, got 'many'"}


# --- Roles ----------------------------------------------------------------------------------


def test_roles_viewer_reads_editor_writes_admin_manages_tokens(session_client):
    """Viewers may only read; editors change workflows but not tokens or secrets; admins may do all."""
    viewer, editor, admin = (Api(session_client(role)) for role in ("viewer", "editor", "admin"))
    for api in (viewer, editor, admin):
        # What a page of the app does: send the CSRF cookie's value back in the header.
        secret = "a" * 32
        api.client.cookies["csrftoken"] = secret
        api.headers = {"HTTP_X_CSRFTOKEN": secret}
    assert viewer.get("/api/workflows/").status_code == 200
    assert viewer.post("/api/workflows/", definition("v")).status_code == 403
    assert editor.post("/api/workflows/", definition("e")).status_code == 201
    assert editor.get("/api/tokens/").status_code == 403
    assert editor.post("/api/secrets/", {"name": "X", "value": "y"}).status_code == 403
    assert admin.get("/api/tokens/").status_code == 200
    assert admin.post("/api/secrets/", {"name": "X", "value": "y"}).status_code == 201


def test_session_writes_need_the_csrf_token(session_client):
    """A signed-in browser session cannot be used cross-site: a write without the CSRF token is refused."""
    client = session_client("editor")
    response = client.post("/api/workflows/", json.dumps(definition("x")), content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_management_api_needs_credentials_and_limited_tokens_stay_out(make_workflow, make_token):
    """No credentials: 401 with the error shape; a workflow-limited token: 403 outside its runs."""
    make_workflow()
    anonymous = Client().get("/api/workflows/")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "unauthorized", "detail": anonymous.json()["detail"], "fields": {}}
    limited = Api(Client(), bearer(make_token("l", ["echo"])))
    assert limited.get("/api/workflows/").status_code == 403
    assert limited.get("/api/runs/").status_code == 200
    bad = Client().get("/api/workflows/", HTTP_AUTHORIZATION="Bearer er_nonexist_" + "x" * 32)
    assert bad.status_code == 401 and bad.json()["detail"] == "Invalid or revoked API token."


def test_unsupported_method_is_405_with_the_routes_methods(admin_api):
    """A method the route does not take is a 405 whose Allow header lists the route's methods."""
    response = admin_api.call("patch", "/api/workflows/", {})
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert set(response["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


# --- Runs -----------------------------------------------------------------------------------


def test_runs_list_filters_detail_and_token_scope(make_workflow, make_token, admin_api):
    """Runs filter by workflow, status and trigger; a limited token sees only its workflow's runs."""
    make_workflow("mine")
    make_workflow("other")
    mine_token = make_token("mine", ["mine"])
    mine = Client().post("/api/wf/mine", **bearer(mine_token)).json()["run_id"]
    other = admin_api.post("/api/wf/other").json()["run_id"]
    WorkflowRun.objects.filter(id=other).update(status="failed")
    assert {r["id"] for r in admin_api.get("/api/runs/").json()["results"]} == {mine, other}
    assert [r["id"] for r in admin_api.get("/api/runs/?workflow=mine").json()["results"]] == [mine]
    assert [r["id"] for r in admin_api.get("/api/runs/?status=failed&trigger=webhook").json()["results"]] == [other]
    assert admin_api.get("/api/runs/?created_after=2999-01-01T00:00:00Z").json()["count"] == 0
    assert admin_api.get("/api/runs/?status=exploded").status_code == 400
    limited = Api(Client(), bearer(mine_token))
    assert [r["id"] for r in limited.get("/api/runs/").json()["results"]] == [mine]
    detail = limited.get(f"/api/runs/{mine}")
    assert detail.status_code == 200 and detail.json()["steps"] == [] and detail.json()["status"] == "queued"
    assert limited.get(f"/api/runs/{other}/").status_code == 404
    assert limited.get("/api/runs/not-a-uuid").status_code == 404


def test_cancel_and_rerun(make_workflow, admin_api):
    """Cancel stops a queued run; re-run starts a new manual run with the same parameters."""
    make_workflow(parameters=[{"name": "n", "type": "integer"}])
    run_id = admin_api.post("/api/wf/echo", {"n": 5}).json()["run_id"]
    cancelled = admin_api.post(f"/api/runs/{run_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    rerun = admin_api.post(f"/api/runs/{run_id}/rerun")
    assert rerun.status_code == 201
    assert rerun.json()["params"] == {"n": 5} and rerun.json()["trigger"] == "manual"
    assert rerun.json()["id"] != run_id


# --- Data -----------------------------------------------------------------------------------


def test_datatype_crud(admin_api):
    """Data types are created, read, retyped with PUT and deleted; bad fields are named."""
    created = admin_api.post("/api/datatypes/", {"name": "lead", "fields": [{"name": "email", "type": "email"}]})
    assert created.status_code == 201 and created.json()["fields"][0]["name"] == "email"
    assert admin_api.get("/api/datatypes/lead").json()["name"] == "lead"
    replaced = admin_api.put("/api/datatypes/lead/", {"fields": [{"name": "email", "type": "email"},
                                                                  {"name": "score", "type": "integer"}]})
    assert [f["name"] for f in replaced.json()["fields"]] == ["email", "score"]
    bad = admin_api.post("/api/datatypes/", {"name": "x", "fields": [{"name": "Bad Name", "type": "nope"}]})
    assert bad.status_code == 400 and bad.json()["fields"]
    assert admin_api.delete("/api/datatypes/lead/").status_code == 204
    assert admin_api.get("/api/datatypes/lead/").status_code == 404


def test_records_crud_filtering_ordering_and_pages(admin_api):
    """Records: create, filter with lookups as query parameters, order, paginate, update and delete."""
    lead = data_type_create(name="lead", fields=[{"name": "plan", "type": "text"}, {"name": "score", "type": "integer"}])
    for plan, score in [("pro", 70), ("pro", 40), ("free", 90), ("pro", 55)]:
        record_create(data_type=lead, fields={"plan": plan, "score": score})
    found = admin_api.get("/api/records/lead/?plan=pro&score__gte=50&order_by=-score").json()
    assert [r["score"] for r in found["results"]] == [70, 55]
    page = admin_api.get("/api/records/lead/?order_by=score&page_size=2&page=2").json()
    assert page["count"] == 4 and [r["score"] for r in page["results"]] == [70, 90] and page["next"] is None
    assert "page=1" in page["previous"] or page["previous"].endswith("page_size=2")
    bad = admin_api.get("/api/records/lead/?score__near=3")
    assert bad.status_code == 400 and "filter.score__near" in bad.json()["fields"]
    created = admin_api.post("/api/records/lead/", {"plan": "team", "score": "12"})
    assert created.status_code == 201 and created.json()["score"] == 12
    record_id = created.json()["id"]
    updated = admin_api.patch(f"/api/records/lead/{record_id}/", {"score": 13})
    assert updated.json() == {**created.json(), "score": 13, "modified": updated.json()["modified"]}
    invalid = admin_api.patch(f"/api/records/lead/{record_id}", {"score": "lots"})
    assert invalid.status_code == 400 and "score" in json.dumps(invalid.json()["fields"])
    assert admin_api.delete(f"/api/records/lead/{record_id}").status_code == 204
    assert admin_api.get(f"/api/records/lead/{record_id}").status_code == 404
    assert admin_api.get("/api/records/nothing/").status_code == 404


# --- Tokens and secrets -----------------------------------------------------------------------


def test_token_shown_once_then_listed_without_value_and_revoked(admin_api, make_workflow):
    """A new token's value is in the create answer only; revoking it makes it fail at once."""
    make_workflow()
    created = admin_api.post("/api/tokens/", {"name": "zapier", "workflows": ["echo"]})
    assert created.status_code == 201
    value = created.json()["token"]
    assert value.startswith("er_") and created.json()["admin"] is False and created.json()["workflows"] == ["echo"]
    listing = admin_api.get("/api/tokens/").content.decode()
    assert value not in listing and "zapier" in listing
    assert value not in json.dumps(list(ApiToken.objects.values()), default=str)  # only its digest is kept
    assert Client().post("/api/wf/echo", **bearer(value)).status_code == 202
    revoked = admin_api.delete(f"/api/tokens/{created.json()['id']}/")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert Client().post("/api/wf/echo", **bearer(value)).status_code == 401
    unknown = admin_api.post("/api/tokens/", {"name": "x", "workflows": ["ghost"]})
    assert unknown.status_code == 400 and "ghost" in unknown.json()["fields"]["workflows"]
    assert admin_api.get("/api/tokens/99999999999999999999/").status_code == 404


def test_secret_values_go_in_and_never_come_out(admin_api):
    """Secrets are stored encrypted; list, read and write answers never contain the value."""
    created = admin_api.post("/api/secrets/", {"name": "STRIPE_KEY", "value": "sk_live_123", "description": "Stripe"})
    assert created.status_code == 201 and "sk_live_123" not in created.content.decode()
    assert decrypt(Secret.objects.get(name="STRIPE_KEY").ciphertext) == "sk_live_123"
    replaced = admin_api.put("/api/secrets/STRIPE_KEY/", {"value": "sk_live_456"})
    assert replaced.status_code == 200
    assert decrypt(Secret.objects.get(name="STRIPE_KEY").ciphertext) == "sk_live_456"
    for path in ("/api/secrets/", "/api/secrets/STRIPE_KEY/"):
        body = admin_api.get(path).content.decode()
        assert "STRIPE_KEY" in body and "sk_live" not in body
    assert admin_api.post("/api/secrets/", {"name": "bad name", "value": "x"}).status_code == 400
    assert admin_api.delete("/api/secrets/STRIPE_KEY").status_code == 204
    assert not Secret.objects.exists()


def test_create_token_command_prints_the_token_once(make_workflow):
    """manage.py create_token prints a working token; with --workflow it is limited to those workflows."""
    make_workflow("alpha")
    make_workflow("beta")
    out, err = StringIO(), StringIO()
    call_command("create_token", "ci", "--workflow", "alpha", stdout=out, stderr=err)
    value = out.getvalue().strip()
    assert value.startswith("er_") and len(value) == 3 + 8 + 1 + 32
    assert "cannot be shown again" in err.getvalue()
    assert Client().post("/api/wf/alpha", **bearer(value)).status_code == 202
    assert Client().post("/api/wf/beta", **bearer(value)).status_code == 403
    admin = StringIO()
    call_command("create_token", "ops", stdout=admin, stderr=StringIO())
    assert ApiToken.objects.get(name="ops").admin is True
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="ghost"):
        call_command("create_token", "x", "--workflow", "ghost", stdout=StringIO(), stderr=StringIO())


def test_bad_bodies_and_nul_characters_are_400_not_500(admin_api):
    """Management writes refuse non-objects, NUL characters and form bodies with clear 4xx errors."""
    assert admin_api.client.post("/api/workflows/", "[1]", content_type="application/json",
                                 **admin_api.headers).status_code == 400
    nul = admin_api.post("/api/datatypes/", {"name": "a\u0000b", "fields": []})
    assert nul.status_code == 400 and "NUL" in nul.json()["detail"]
    assert admin_api.get("/api/workflows/%00/").status_code == 400
    form = admin_api.client.post("/api/workflows/", {"name": "x"}, **admin_api.headers)
    assert form.status_code == 415 and form.json()["error"] == "unsupported_media_type"
    malformed = admin_api.client.post("/api/workflows/", "{", content_type="application/json", **admin_api.headers)
    assert malformed.status_code == 400 and malformed.json()["error"] == "bad_request"
