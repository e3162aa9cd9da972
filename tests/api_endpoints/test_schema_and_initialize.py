"""The OpenAPI document and Swagger UI (behind credentials), and "Detect data" via /initialize."""
import json

import pytest
from django.test import Client

from api_endpoints.models import SampleRequest

from .conftest import bearer

pytestmark = pytest.mark.django_db

SCHEMA_ACCEPT = {"HTTP_ACCEPT": "application/vnd.oai.openapi+json"}


def test_schema_needs_a_session_or_an_admin_token(make_token, make_workflow, session_client):
    """Anonymous callers and limited tokens get no schema; an admin token and a viewer's session do."""
    make_workflow()
    assert Client().get("/api/schema/").status_code == 401
    assert Client().get("/api/schema/", **bearer(make_token("l", ["echo"]))).status_code == 403
    assert session_client("viewer").get("/api/schema/", **SCHEMA_ACCEPT).status_code == 200


def test_each_enabled_workflow_is_an_operation_typed_from_its_parameters(make_workflow, admin_token):
    """Each published, enabled workflow has its own path, body schema and auth; others are absent."""
    make_workflow("signup", parameters=[
        {"name": "email", "type": "email", "required": True, "description": "Who signs up"},
        {"name": "age", "type": "integer", "default": 18},
        {"name": "tags", "type": "text", "list": True},
        {"name": "avatar", "type": "file"},
    ], response="sync")
    make_workflow("lookup", parameters=[{"name": "q", "type": "text", "required": True}], methods=["GET"], auth="public")
    make_workflow("off", enabled=False)
    make_workflow("draft_only", publish=False)
    response = Client().get("/api/schema/", **SCHEMA_ACCEPT, **bearer(admin_token))
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert "/api/wf/off" not in paths and "/api/wf/draft_only" not in paths
    signup = paths["/api/wf/signup"]["post"]
    body = signup["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["email"]
    assert body["properties"]["email"] == {"type": "string", "format": "email", "description": "Who signs up"}
    assert body["properties"]["age"] == {"type": "integer", "default": 18}
    assert body["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    multipart = signup["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert multipart["properties"]["avatar"] == {"type": "string", "format": "binary"}
    assert {"200", "202", "502", "400", "401", "413"} <= set(signup["responses"])
    lookup = paths["/api/wf/lookup"]["get"]
    assert lookup["parameters"] == [{"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}]
    assert lookup["security"] == [{}]
    assert "/api/workflows/{name}/" in paths and "/api/records/{type}/" in paths


def test_docs_page_is_served_from_the_sidecar(admin_token):
    """Swagger UI loads its assets from our static files (no CDN) and needs credentials."""
    assert Client().get("/api/docs/").status_code == 401
    page = Client().get(f"/api/docs/?api_token={admin_token}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    # The page fetches the document with the same token.
    assert f"/api/schema/?api_token={admin_token}" in html.encode().decode("unicode_escape")


def test_initialize_records_the_request_and_proposes_parameters(make_workflow, admin_token):
    """POST /api/wf/<name>/initialize stores the sample and answers names and inferred types."""
    make_workflow("signup", publish=False)
    sample = {"email": "a@example.com", "age": 31, "score": 2.5, "vip": True, "tags": ["a"], "born": "1990-04-01",
              "Bad Key": 1}
    response = Client().post("/api/wf/signup/initialize", json.dumps(sample), content_type="application/json",
                             **bearer(admin_token))
    assert response.status_code == 200, response.content
    proposed = {spec["name"]: (spec["type"], spec["list"]) for spec in response.json()["parameters"]}
    assert proposed == {"email": ("email", False), "age": ("integer", False), "score": ("number", False),
                        "vip": ("boolean", False), "tags": ("text", True), "born": ("date", False)}
    stored = SampleRequest.objects.get(workflow__name="signup")
    assert stored.request["body"] == sample and stored.parameters == response.json()["parameters"]
    assert "authorization" not in {name.lower() for name in stored.request["headers"]}


def test_initialize_bubble_alias_and_who_may_call_it(make_workflow, admin_token, make_token, session_client):
    """The Bubble alias answers in its envelope; editors may use their session, viewers and limited tokens not."""
    make_workflow("hook")
    bubble = Client().post(f"/version-test/api/1.1/wf/hook/initialize?api_token={admin_token}",
                           {"plan": "pro"})
    assert bubble.status_code == 200 and bubble.json()["status"] == "success"
    assert bubble.json()["response"]["parameters"] == [{"name": "plan", "type": "text", "list": False}]
    editor = session_client("editor")
    editor.cookies["csrftoken"] = "b" * 32
    by_editor = editor.post("/api/wf/hook/initialize", json.dumps({"n": 1}), content_type="application/json",
                            HTTP_X_CSRFTOKEN="b" * 32)
    assert by_editor.status_code == 200
    assert session_client("viewer").post("/api/wf/hook/initialize", {}).status_code == 403
    assert Client().post("/api/wf/hook/initialize", {}, **bearer(make_token("l", ["hook"]))).status_code == 403
    assert Client().post("/api/wf/hook/initialize", {}).status_code == 401
    assert Client().post("/api/wf/ghost/initialize", {}, **bearer(admin_token)).status_code == 404


def test_an_editors_session_cannot_replace_the_sample_by_a_safe_method(make_workflow, admin_token, session_client):
    """A cross-site link sends the session cookie (SameSite=Lax) on a GET: refused with 405, the sample kept;
    the editor's POST with the CSRF token still records one, and token callers keep every method."""
    make_workflow("hook")
    editor = session_client("editor")
    editor.cookies["csrftoken"] = "b" * 32
    posted = editor.post("/api/wf/hook/initialize", json.dumps({"n": 1}), content_type="application/json",
                         HTTP_X_CSRFTOKEN="b" * 32)
    assert posted.status_code == 200
    kept = SampleRequest.objects.get(workflow__name="hook")
    for method in ("get", "head", "options"):
        for path in ("/api/wf/hook/initialize?evil=1", "/api/1.1/wf/hook/initialize/?evil=1"):
            refused = getattr(editor, method)(path)
            assert refused.status_code == 405, (method, path)
            assert refused["Allow"] == "POST"
    stored = SampleRequest.objects.get(workflow__name="hook")
    assert (stored.request, stored.parameters, stored.pk) == (kept.request, kept.parameters, kept.pk)
    assert stored.parameters == [{"name": "n", "type": "integer", "list": False}]
    by_token = Client().get("/api/wf/hook/initialize?plan=pro", **bearer(admin_token))
    assert by_token.status_code == 200
    assert SampleRequest.objects.get(workflow__name="hook").parameters == [{"name": "plan", "type": "text",
                                                                            "list": False}]
