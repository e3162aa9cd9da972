"""Bad input at the edges: oversized bodies, deep nesting, huge lists, invalid UTF-8, wrong content
types, 10,000 steps, a 100,000-item list — each a clear 4xx or handled within the documented limits,
never a 500. (Malformed JSON, NaN, NUL and lone surrogates are pinned in tests/api_endpoints.)
"""
import io
import json
import time

import pytest
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

from logs.models import WorkflowRun
from scheduler.models import Batch, ScheduledRun
from workflows import engine
from workflows.models import Workflow

from .conftest import bearer

pytestmark = pytest.mark.django_db

LIST_PARAMS = [{"name": "ids", "type": "integer", "list": True}, {"name": "meta", "type": "object"}]


def call(client, body: bytes, token: str, content_type="application/json", path="/api/wf/echo", **extra):
    # generic(): the body goes out as these bytes, whatever charset the content type claims.
    return client.generic("POST", path, body, content_type=content_type, **bearer(token), **extra)


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.fixture
def echo(make_workflow):
    return make_workflow(parameters=LIST_PARAMS)


def assert_json_error(response, status: int, code: str):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["error"] == code and body["detail"], body
    return body


def test_the_real_body_limit_is_enforced_and_a_body_at_the_limit_is_read(echo, admin_token):
    """1 MiB by default: one byte more is a 413 (JSON or multipart), the limit itself is accepted."""
    limit = settings.ENGINE_ROOM_MAX_BODY_BYTES
    filler = limit - len(json.dumps({"meta": {"pad": ""}}))
    at_limit = json.dumps({"meta": {"pad": "x" * filler}}).encode()
    assert len(at_limit) == limit
    assert call(Client(), at_limit, admin_token).status_code == 202
    assert_json_error(call(Client(), at_limit + b" ", admin_token), 413, "payload_too_large")
    upload = Client().post("/api/wf/echo", {"file": io.BytesIO(b"x" * (limit + 1))}, **bearer(admin_token))
    assert_json_error(upload, 413, "payload_too_large")
    assert WorkflowRun.objects.count() == 1


def test_nesting_within_valid_json_is_bounded(echo, admin_token):
    """Depth 150 is stored as sent; depth 250 is a 400 saying so (PostgreSQL JSON and renders stay sane)."""
    ok = call(Client(), json.dumps({"meta": nested(150)}).encode(), admin_token)
    assert ok.status_code == 202
    deep = call(Client(), json.dumps({"meta": nested(250)}).encode(), admin_token)
    assert "nested too deeply" in assert_json_error(deep, 400, "bad_request")["detail"]


def test_a_100000_item_list_parameter_is_coerced_within_bounds(echo, admin_token):
    """100,000 integers (~0.6 MB) fit the body limit and are coerced; one bad item is named."""
    ids = list(range(100_000))
    started = time.monotonic()
    response = call(Client(), json.dumps({"ids": ids}).encode(), admin_token)
    assert response.status_code == 202 and time.monotonic() - started < 20
    assert WorkflowRun.objects.get().params["ids"][-1] == 99_999
    bad = call(Client(), json.dumps({"ids": [*ids[:5000], "x"]}).encode(), admin_token)
    assert "ids" in assert_json_error(bad, 400, "bad_request")["fields"]


@pytest.mark.parametrize("content_type, body, status", [
    ("text/plain", b'{"ids": [1]}', 415),
    ("application/xml", b"<ids>1</ids>", 415),
    ("", b'{"ids": [1]}', 415),
    ("application/octet-stream", b"\x00\x01\x02", 415),
    ("application/json; charset=utf-16", '{"ids": [1]}'.encode("utf-16"), 400),
    # Invalid UTF-8 in a form decodes to replacement characters, which then fail their types.
    ("application/x-www-form-urlencoded", b"ids=%FF%FE&meta=%C0", 400),
    # Django's multipart parser takes a body cut short after a part as that part: handled.
    ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data; name=\"ids\"\r\n\r\n1", 202),
    ("multipart/form-data", b"no boundary at all", 400),
])
def test_wrong_content_types_and_encodings_are_4xx_or_handled(echo, admin_token, content_type, body, status):
    """Unreadable media types are 415; a readable type holding invalid bytes or structure is a 400."""
    response = call(Client(), body, admin_token, content_type=content_type)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")


def test_a_bad_content_length_header_is_a_400(echo, admin_token):
    response = call(Client(), b'{"ids": [1]}', admin_token, CONTENT_LENGTH="lots")
    assert_json_error(response, 400, "bad_request")


@pytest.fixture
def editor_client(make_user):
    """A signed-in editor (CSRF is the subject of test_csrf.py, not of these tests)."""
    client = Client(raise_request_exception=False)
    client.force_login(make_user("editor"))
    return client


def test_10000_steps_are_refused_by_the_api_and_the_import_page(admin_token, editor_client):
    """ENGINE_ROOM_MAX_STEPS (200) refuses a 10,000-step definition with a message naming the limit."""
    document = {"format": 1, "name": "huge", "steps": [{"action": "terminate"}] * 10_000}
    api = Client().post("/api/workflows/", json.dumps(document), content_type="application/json", **bearer(admin_token))
    body = assert_json_error(api, 400, "definition_invalid")
    assert "ENGINE_ROOM_MAX_STEPS" in body["fields"]["steps"]
    page = editor_client.post("/workflows/", {"intent": "import", "file": io.BytesIO(json.dumps(document).encode())})
    assert page.status_code in (200, 400) and b"ENGINE_ROOM_MAX_STEPS" in page.content
    assert not Workflow.objects.filter(name="huge").exists()


DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture
def deep_json_surfaces(make_workflow, admin_token, editor_client):
    """Every input that parses JSON text, each called with JSON nested 5,000 deep."""
    from datastore.services import data_type_create

    make_workflow("takes_json", auth="token", methods=["GET", "POST"],
                  parameters=[{"name": "meta", "type": "object"}, {"name": "tags", "type": "text", "list": True}])
    data_type_create(name="doc", fields=[{"name": "meta", "type": "object"}])
    anonymous = Client(raise_request_exception=False)
    return {
        "management API body": lambda: anonymous.post(
            "/api/workflows/", DEEP, content_type="application/json", **bearer(admin_token)),
        "webhook form parameter (object)": lambda: anonymous.post(
            "/api/wf/takes_json", {"meta": DEEP}, **bearer(admin_token)),
        "webhook query parameter (list)": lambda: anonymous.get(
            "/api/wf/takes_json", {"tags": DEEP}, **bearer(admin_token)),
        "workflow import page": lambda: editor_client.post(
            "/workflows/", {"intent": "import", "file": io.BytesIO(DEEP.encode())}),
        "record form page": lambda: editor_client.post("/data/doc/new/", {"meta": DEEP}),
    }


@pytest.mark.parametrize("surface", [
    "management API body", "webhook form parameter (object)", "webhook query parameter (list)",
    "workflow import page", "record form page",
])
def test_json_nested_past_the_parsers_limit_is_a_4xx_everywhere(deep_json_surfaces, surface):
    """json.loads raises RecursionError (not ValueError) past ~1,000 levels: each reader must say 400."""
    response = deep_json_surfaces[surface]()
    assert 400 <= response.status_code < 500 or (response.status_code == 200 and b"JSON" in response.content), (
        response.status_code, response.content[:200])
    assert not WorkflowRun.objects.exists()


def test_a_100000_item_list_schedules_100000_runs_and_one_more_is_refused(make_workflow, settings):
    """schedule_workflow_on_list at DESIGN's ceiling: 100,000 items become one batch; 100,001 is a clear
    step error naming ENGINE_ROOM_LIST_MAX_ITEMS, with nothing written."""
    make_workflow("item", parameters=[{"name": "n", "type": "integer"}])
    count = settings.ENGINE_ROOM_LIST_MAX_ITEMS
    fan_out = make_workflow("fan_out", parameters=[{"name": "extra", "type": "integer"}], steps=[
        {"key": "all", "action": "schedule_workflow_on_list",
         "config": {"workflow": "item", "list": f"{{{{ range({count}) | list + ([params.extra] if params.extra "
                                                 f"is not none else []) }}}}", "item_param": "n"}},
    ])
    from django.db import transaction

    from workflows.services import run_enqueue

    def run(extra):
        with transaction.atomic():
            queued = run_enqueue(workflow=fan_out, params={"extra": extra}, trigger="manual", dispatch_on_commit=False)
        with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
            return engine.run_execute(queued.id)

    started = time.monotonic()
    done = run(None)
    assert done.status == "succeeded", done.error
    assert time.monotonic() - started < 120
    batch = Batch.objects.get()
    assert batch.total == count == ScheduledRun.objects.filter(batch=batch).count()

    refused = run(1)
    assert refused.status == "failed" and "ENGINE_ROOM_LIST_MAX_ITEMS" in refused.steps.get().error
    assert Batch.objects.count() == 1
