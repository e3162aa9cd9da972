"""The workflow endpoint in-process: credentials, the check order, bodies, parameters, the stored request."""
import json

import pytest
from django.test import Client

from api_endpoints.signatures import hmac_sign, stripe_sign
from logs.models import WorkflowRun
from workflows.services import workflow_update

from .conftest import bearer, definition

pytestmark = pytest.mark.django_db

TYPED = [
    {"name": "email", "type": "email", "required": True},
    {"name": "amount", "type": "number"},
    {"name": "tags", "type": "text", "list": True},
    {"name": "active", "type": "boolean", "default": True},
]


def post_json(client, path, body, **extra):
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def only_run() -> WorkflowRun:
    runs = list(WorkflowRun.objects.all())
    assert len(runs) == 1, runs
    return runs[0]


def test_token_call_queues_a_run_with_typed_params(make_workflow, admin_token):
    """An async call with a token answers 202 with the run id and a status URL, and the run has typed params."""
    make_workflow(parameters=TYPED)
    response = post_json(Client(), "/api/wf/echo", {"email": "A@Example.COM", "amount": "12.5", "tags": ["a", "b"],
                                                     "extra": "kept"}, **bearer(admin_token))
    assert response.status_code == 202, response.content
    body = response.json()
    run = only_run()
    assert body == {"status": "queued", "run_id": str(run.id), "status_url": f"http://testserver/api/runs/{run.id}"}
    assert run.params == {"email": "A@example.com", "amount": 12.5, "tags": ["a", "b"], "active": True}
    assert run.trigger == "webhook" and run.caller == "token:admin" and run.queue == "interactive"
    assert run.request["body"]["extra"] == "kept"


def test_trailing_slash_and_bubble_alias_answer_without_redirect(make_workflow, admin_token):
    """/api/wf/x/ and /api/1.1/wf/x both run the workflow; the alias answers 200 in Bubble's envelope."""
    make_workflow()
    slashed = post_json(Client(), "/api/wf/echo/", {}, **bearer(admin_token))
    bubble = post_json(Client(), "/api/1.1/wf/echo", {}, **bearer(admin_token))
    assert slashed.status_code == 202
    assert bubble.status_code == 200
    assert bubble.json()["status"] == "success"
    assert set(bubble.json()["response"]) == {"run_id", "status_url"}
    assert WorkflowRun.objects.count() == 2


def test_form_and_query_string_bodies_are_mapped_to_parameters(make_workflow, admin_token):
    """Form fields and, for a body-less POST, the query string fill the typed parameters."""
    make_workflow(parameters=TYPED)
    form = Client().post("/api/wf/echo", {"email": "x@example.com", "amount": "3", "tags": "a,b", "active": "no"},
                         **bearer(admin_token))
    query = Client().post("/api/wf/echo?email=y@example.com&amount=4&api_token=" + admin_token)
    assert form.status_code == 202 and query.status_code == 202, (form.content, query.content)
    by_email = {run.params["email"]: run for run in WorkflowRun.objects.all()}
    assert by_email["x@example.com"].params == {"email": "x@example.com", "amount": 3, "tags": ["a", "b"], "active": False}
    assert by_email["y@example.com"].params["amount"] == 4
    # ?api_token= works for Bubble callers, but is never kept with the run.
    assert "api_token" not in by_email["y@example.com"].request["query"]
    assert admin_token not in json.dumps(by_email["y@example.com"].request)


def test_get_reads_parameters_from_the_query_string_when_allowed(make_workflow, admin_token):
    """A workflow with methods [GET] reads its parameters from the query string; POST then answers 405."""
    make_workflow(parameters=TYPED, methods=["GET"])
    response = Client().get("/api/wf/echo?email=q@example.com&tags=a&tags=b", **bearer(admin_token))
    assert response.status_code == 202, response.content
    assert only_run().params["tags"] == ["a", "b"]
    refused = post_json(Client(), "/api/wf/echo", {}, **bearer(admin_token))
    assert refused.status_code == 405
    assert refused["Allow"] == "GET"
    assert refused.json()["error"] == "method_not_allowed"


def test_multipart_upload_is_stored_as_a_file_parameter(make_workflow, admin_token, settings, tmp_path):
    """A file parameter sent as a multipart upload is kept through Django's storage and passed by URL."""
    settings.MEDIA_ROOT = tmp_path
    make_workflow(parameters=[{"name": "doc", "type": "file", "required": True}, {"name": "note", "type": "text"}])
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("report.csv", b"a,b\n1,2\n", content_type="text/csv")
    response = Client().post("/api/wf/echo", {"doc": upload, "note": "hi"}, **bearer(admin_token))
    assert response.status_code == 202, response.content
    doc = only_run().params["doc"]
    assert doc["name"] == "report.csv" and doc["size"] == 8 and doc["content_type"] == "text/csv"
    stored = tmp_path / doc["url"].removeprefix("/media/")
    assert stored.read_bytes() == b"a,b\n1,2\n"


def test_file_parameter_accepts_a_url(make_workflow, admin_token):
    """A file parameter may also be given as a URL in JSON."""
    make_workflow(parameters=[{"name": "doc", "type": "file", "required": True}])
    response = post_json(Client(), "/api/wf/echo", {"doc": "https://files.example.com/a.pdf"}, **bearer(admin_token))
    assert response.status_code == 202
    assert only_run().params["doc"] == "https://files.example.com/a.pdf"


def test_stored_request_has_no_credentials_or_signatures(make_workflow, signing_secret):
    """The run's `request` keeps headers and body but never Authorization, Cookie or the signature."""
    make_workflow(auth="hmac", signing_secret="SIGNING")
    body = json.dumps({"id": 1}).encode()
    response = Client().post(
        "/api/wf/echo", body, content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=hmac_sign(signing_secret, body), HTTP_AUTHORIZATION="Bearer nope",
        HTTP_COOKIE="sessionid=abc", HTTP_X_CUSTOM="kept",
    )
    assert response.status_code == 202, response.content
    request = only_run().request
    names = {name.lower() for name in request["headers"]}
    assert "x-custom" in names
    assert not names & {"authorization", "cookie", "x-hub-signature-256"}
    assert request["method"] == "POST" and request["body"] == {"id": 1}


# --- Authentication modes -------------------------------------------------------------------


def test_public_workflow_needs_no_credentials(make_workflow):
    """auth: public runs for anyone; the caller recorded is the client's IP."""
    make_workflow(auth="public")
    response = post_json(Client(), "/api/wf/echo", {})
    assert response.status_code == 202
    assert only_run().caller == "127.0.0.1"


def test_hmac_signature_valid_and_tampered(make_workflow, signing_secret):
    """A valid X-Hub-Signature-256 runs the workflow; a tampered body or a missing signature is a 401."""
    make_workflow(auth="hmac", signing_secret="SIGNING")
    body = b'{"action": "opened"}'
    good = Client().post("/api/wf/echo", body, content_type="application/json",
                         HTTP_X_HUB_SIGNATURE_256=hmac_sign(signing_secret, body))
    tampered = Client().post("/api/wf/echo", b'{"action": "closed"}', content_type="application/json",
                             HTTP_X_HUB_SIGNATURE_256=hmac_sign(signing_secret, body))
    missing = Client().post("/api/wf/echo", body, content_type="application/json")
    assert good.status_code == 202
    assert tampered.status_code == 401 and tampered.json()["error"] == "unauthorized"
    assert missing.status_code == 401
    assert WorkflowRun.objects.count() == 1


def test_hmac_custom_header_and_a_token_never_replaces_the_signature(make_workflow, signing_secret, admin_token):
    """signature_header names the header; an admin token without a signature is still a 401."""
    make_workflow(auth="hmac", signing_secret="SIGNING", signature_header="X-Signature")
    body = b"{}"
    signed = Client().post("/api/wf/echo", body, content_type="application/json",
                           HTTP_X_SIGNATURE=hmac_sign(signing_secret, body))
    token_only = Client().post("/api/wf/echo", body, content_type="application/json", **bearer(admin_token))
    assert signed.status_code == 202
    assert token_only.status_code == 401


def test_stripe_signature_valid_stale_and_rolled(make_workflow, signing_secret):
    """Stripe-Signature: a fresh signature runs, one older than 5 minutes is a 401, any of several v1 may match."""
    make_workflow(auth="stripe", signing_secret="SIGNING")
    body = json.dumps({"id": "evt_1", "type": "ping"}).encode()
    fresh = Client().post("/api/wf/echo", body, content_type="application/json",
                          HTTP_STRIPE_SIGNATURE=stripe_sign(signing_secret, body))
    import time

    stale = Client().post("/api/wf/echo", body, content_type="application/json",
                          HTTP_STRIPE_SIGNATURE=stripe_sign(signing_secret, body, int(time.time()) - 301))
    # While a secret is rolled, Stripe signs with both; the one we know may come second.
    old = stripe_sign("whsec_old", json.dumps({"id": "evt_2"}).encode())
    new = stripe_sign(signing_secret, json.dumps({"id": "evt_2"}).encode())
    rolled_header = f"{old},{new.split(',')[1]}"
    rolled = Client().post("/api/wf/echo", json.dumps({"id": "evt_2"}).encode(), content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=rolled_header)
    assert fresh.status_code == 202
    assert stale.status_code == 401
    assert rolled.status_code == 202, rolled.content


def test_limited_token_may_call_only_its_workflows(make_workflow, make_token):
    """A token limited to one workflow: 202 there, 403 on another existing workflow, 404 on an unknown name."""
    make_workflow("mine")
    make_workflow("theirs")
    token = make_token("zapier", ["mine"])
    assert post_json(Client(), "/api/wf/mine", {}, **bearer(token)).status_code == 202
    forbidden = post_json(Client(), "/api/wf/theirs", {}, **bearer(token))
    unknown = post_json(Client(), "/api/wf/nothing_here", {}, **bearer(token))
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_unknown_and_disabled_workflows_answer_like_token_workflows(make_workflow, admin_token):
    """Without credentials, unknown, disabled, unpublished and existing token workflows all give the same 401."""
    make_workflow("existing")
    make_workflow("disabled", enabled=False)
    make_workflow("unpublished", publish=False)
    answers = {
        name: post_json(Client(), f"/api/wf/{name}", {})
        for name in ("existing", "disabled", "unpublished", "never_made")
    }
    bodies = {name: (response.status_code, response.json()) for name, response in answers.items()}
    assert len(set(json.dumps(body) for body in bodies.values())) == 1, bodies
    assert bodies["existing"][0] == 401
    assert answers["existing"]["WWW-Authenticate"].startswith("Bearer")
    # With an admin token, the disabled and unpublished ones are a 404 (never revealed as disabled).
    for name in ("disabled", "unpublished", "never_made"):
        response = post_json(Client(), f"/api/wf/{name}", {}, **bearer(admin_token))
        assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_revoked_token_stops_working_at_once(make_workflow, admin_token):
    """Revoking a token makes the very next call a 401, even though lookups are cached."""
    from api_endpoints.models import ApiToken
    from api_endpoints.services import token_revoke

    make_workflow()
    assert post_json(Client(), "/api/wf/echo", {}, **bearer(admin_token)).status_code == 202
    token_revoke(token=ApiToken.objects.get())
    response = post_json(Client(), "/api/wf/echo", {}, **bearer(admin_token))
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked API token."
    assert ApiToken.objects.get().last_used_at is not None


def test_version_test_runs_the_draft_and_needs_an_admin_token(make_workflow, admin_token, make_token):
    """/version-test/ runs the unpublished draft; a public workflow still needs an admin token there."""
    workflow = make_workflow(auth="public")
    workflow_update(workflow=workflow, definition=definition(auth="public", parameters=[{"name": "new", "type": "text"}]))
    anonymous = post_json(Client(), "/version-test/api/1.1/wf/echo", {"new": "x"})
    limited = post_json(Client(), "/version-test/api/wf/echo", {"new": "x"}, **bearer(make_token("l", ["echo"])))
    draft = post_json(Client(), "/version-test/api/1.1/wf/echo/", {"new": "x"}, **bearer(admin_token))
    live = post_json(Client(), "/api/wf/echo", {"new": "x"})
    assert anonymous.status_code == 401
    assert anonymous.json() == {"statusCode": 401, "body": {"status": "unauthorized", "message": anonymous.json()["body"]["message"]}}
    assert limited.status_code == 403
    assert draft.status_code == 200 and live.status_code == 202
    draft_run = WorkflowRun.objects.get(version__isnull=True)
    live_run = WorkflowRun.objects.get(version__isnull=False)
    assert draft_run.params == {"new": "x"} and live_run.params == {}


# --- Errors: each status with its code and JSON body ----------------------------------------


def test_413_body_over_the_limit_comes_before_credentials(make_workflow, settings):
    """A body over ENGINE_ROOM_MAX_BODY_BYTES is a 413 even without credentials."""
    settings.ENGINE_ROOM_MAX_BODY_BYTES = 100
    make_workflow()
    response = post_json(Client(), "/api/wf/echo", {"x": "y" * 200})
    assert response.status_code == 413
    assert response.json() == {"error": "payload_too_large", "detail": response.json()["detail"], "fields": {}}
    assert "limit is 100 bytes" in response.json()["detail"]


def test_415_unsupported_content_type(make_workflow, admin_token):
    """A body in a content type the endpoint cannot read is a 415 that names the accepted ones."""
    make_workflow()
    response = Client().post("/api/wf/echo", b"<xml/>", content_type="application/xml", **bearer(admin_token))
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert "application/json" in response.json()["detail"]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"email": ', "Malformed JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[1, 2]", "must be an object"),
        (b'{"x": NaN}', "Malformed JSON"),
        (b'{"x": "nul\\u0000"}', "NUL"),
        (b'{"x": "\\ud800"}', "surrogate"),
        (b"[" * 5000 + b"]" * 5000, "Malformed JSON"),
    ],
)
def test_400_malformed_bodies_never_500(make_workflow, admin_token, raw, message):
    """Malformed JSON, bad UTF-8, non-objects, NaN, NUL and lone surrogates are 400s with a reason."""
    make_workflow()
    response = Client().post("/api/wf/echo", raw, content_type="application/json", **bearer(admin_token))
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "bad_request"
    assert message in response.json()["detail"]
    assert not WorkflowRun.objects.exists()


def test_400_names_each_bad_or_missing_parameter(make_workflow, admin_token):
    """Every bad or missing parameter is named in `fields`; unknown keys are ignored."""
    make_workflow(parameters=TYPED)
    response = post_json(Client(), "/api/wf/echo", {"amount": "lots", "tags": "x", "unknown": 1}, **bearer(admin_token))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert body["fields"] == {"email": "required", "amount": "expected a number, got 'lots'",
                              "tags": "expected a list, got 'x'"}


def test_429_per_ip_and_per_token(make_workflow, admin_token, settings):
    """Past the per-IP limit (no token) and the per-token limit, calls are 429 with Retry-After."""
    settings.ENGINE_ROOM_RATE_LIMITS = {"ip": "2/min", "token": "3/min"}
    make_workflow("open", auth="public")
    make_workflow("closed")
    ip_codes = [post_json(Client(), "/api/wf/open", {}).status_code for _ in range(3)]
    token_codes = [post_json(Client(), "/api/wf/closed", {}, **bearer(admin_token)).status_code for _ in range(4)]
    assert ip_codes == [202, 202, 429]
    assert token_codes == [202, 202, 202, 429]
    limited = post_json(Client(), "/api/wf/open", {})
    assert limited.json()["error"] == "rate_limited" and int(limited["Retry-After"]) >= 1


def test_a_forged_token_with_a_known_prefix_does_not_use_up_the_real_ones_limit(make_workflow, admin_token, settings):
    """The prefix of a token is public (it is shown in the token list): the limit is counted per whole token."""
    settings.ENGINE_ROOM_RATE_LIMITS = {"ip": "1000/min", "token": "2/min"}
    make_workflow()
    from api_endpoints.tokens import token_prefix

    forged_token = f"er_{token_prefix(admin_token)}_{'x' * 32}"
    forged = [post_json(Client(), "/api/wf/echo", {}, **bearer(forged_token)).status_code for _ in range(3)]
    assert forged == [401, 401, 401]
    real = [post_json(Client(), "/api/wf/echo", {}, **bearer(admin_token)).status_code for _ in range(3)]
    assert real == [202, 202, 429]


def test_calls_work_with_no_token_limit_configured(make_workflow, admin_token, settings):
    settings.ENGINE_ROOM_RATE_LIMITS = {"ip": "1000/min"}
    make_workflow()
    assert post_json(Client(), "/api/wf/echo", {}, **bearer(admin_token)).status_code == 202


def test_limits_fail_open_when_the_cache_is_down(make_workflow, admin_token, settings):
    """With Redis unreachable, calls still work: lookups come from the database, limits are skipped."""
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1},
    }}
    settings.ENGINE_ROOM_RATE_LIMITS = {"ip": "1/min", "token": "1/min"}
    make_workflow()
    codes = [post_json(Client(), "/api/wf/echo", {}, **bearer(admin_token)).status_code for _ in range(2)]
    assert codes == [202, 202]


# --- Idempotency ----------------------------------------------------------------------------


def test_repeated_idempotency_key_replays_the_first_run(make_workflow, admin_token):
    """Two calls with one Idempotency-Key start one run; the second answers the same with Idempotent-Replayed."""
    make_workflow()
    first = post_json(Client(), "/api/wf/echo", {"a": 1}, HTTP_IDEMPOTENCY_KEY="order-7", **bearer(admin_token))
    second = post_json(Client(), "/api/wf/echo", {"a": 2}, HTTP_IDEMPOTENCY_KEY="order-7", **bearer(admin_token))
    other = post_json(Client(), "/api/wf/echo", {"a": 3}, HTTP_IDEMPOTENCY_KEY="order-8", **bearer(admin_token))
    assert first.status_code == second.status_code == 202
    assert second.json()["run_id"] == first.json()["run_id"]
    assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert other.json()["run_id"] != first.json()["run_id"]
    assert WorkflowRun.objects.count() == 2


def test_idempotency_key_expression_and_its_window(make_workflow, admin_token, settings):
    """The definition's idempotency_key expression keys on the body; past the window the key is free again."""
    make_workflow(parameters=[{"name": "order", "type": "text"}], idempotency_key="{{ params.order }}")
    first = post_json(Client(), "/api/wf/echo", {"order": "A1"}, **bearer(admin_token))
    again = post_json(Client(), "/api/wf/echo", {"order": "A1"}, **bearer(admin_token))
    assert again.json()["run_id"] == first.json()["run_id"]
    assert WorkflowRun.objects.get().idempotency_key == "A1"
    from api_endpoints.models import IdempotencyKey

    IdempotencyKey.objects.update(created="2000-01-01T00:00:00Z")
    later = post_json(Client(), "/api/wf/echo", {"order": "A1"}, **bearer(admin_token))
    assert later.json()["run_id"] != first.json()["run_id"]
    assert "Idempotent-Replayed" not in later
    assert WorkflowRun.objects.count() == 2


def test_repeated_stripe_event_id_starts_one_run(make_workflow, signing_secret):
    """A Stripe event delivered twice (a retry) starts one run: the event id is the default key."""
    make_workflow(auth="stripe", signing_secret="SIGNING")
    body = json.dumps({"id": "evt_123", "type": "invoice.paid"}).encode()
    answers = [
        Client().post("/api/wf/echo", body, content_type="application/json",
                      HTTP_STRIPE_SIGNATURE=stripe_sign(signing_secret, body))
        for _ in range(2)
    ]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert answers[0].json()["run_id"] == answers[1].json()["run_id"]
    assert WorkflowRun.objects.count() == 1


def test_unknown_api_path_is_a_json_404():
    """Any other path under /api/ answers the JSON error shape, not an HTML page."""
    response = Client().get("/api/nothing/here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_checks_run_in_the_documented_order(make_workflow, admin_token, settings):
    """Size before credentials, credentials before method, method before content type, type before parameters."""
    settings.ENGINE_ROOM_MAX_BODY_BYTES = 50
    make_workflow(parameters=TYPED, methods=["GET"])
    big_unauthenticated = Client().post("/api/wf/echo", b"x" * 60, content_type="application/xml")
    wrong_method_unauthenticated = Client().post("/api/wf/echo", b"<a/>", content_type="application/xml")
    wrong_method_and_type = Client().post("/api/wf/echo", b"<a/>", content_type="application/xml", **bearer(admin_token))
    assert big_unauthenticated.status_code == 413
    assert wrong_method_unauthenticated.status_code == 401
    assert wrong_method_and_type.status_code == 405
    make_workflow("posted", parameters=TYPED)
    bad_type_and_params = Client().post("/api/wf/posted", b"<a/>", content_type="application/xml", **bearer(admin_token))
    assert bad_type_and_params.status_code == 415


def test_any_accept_header_gets_json(make_workflow, admin_token):
    """Webhook senders' odd Accept headers never cause a 406: the answer is JSON."""
    make_workflow()
    response = post_json(Client(), "/api/wf/echo", {}, HTTP_ACCEPT="text/html", **bearer(admin_token))
    assert response.status_code == 202 and response["Content-Type"] == "application/json"


def test_impossible_names_are_answered_without_a_lookup(admin_token):
    """Names that cannot exist (NUL, spaces, capitals) are a 404 for an admin and a 401 for anyone else."""
    for name in ("a%00b", "Has%20Space", "UPPER"):
        assert Client().post(f"/api/wf/{name}", **bearer(admin_token)).status_code == 404
        assert Client().post(f"/api/wf/{name}").status_code == 401



def test_a_finished_run_wakes_its_waiting_caller_with_its_state(settings, monkeypatch,
                                                                 django_capture_on_commit_callbacks):
    """When a run finishes (logs.signals.run_finished, in the worker), a caller waiting on it wakes at
    once through Redis instead of at its next read of the row, and answers from what the wake-up carries."""
    import threading
    import time

    from api_endpoints import waiting
    from logs.signals import run_finished

    if not settings.REDIS_AVAILABLE:
        pytest.skip("needs Redis")
    run = WorkflowRun(id="8d6f9a1c-0000-4000-8000-000000000001", workflow_name="x", trigger="webhook",
                      status="succeeded", response={"total": 25.0})
    reads = []
    monkeypatch.setattr(waiting, "run_state", lambda run_id: reads.append(run_id) or waiting.RunState(
        str(run_id), "running", None, "", ""))
    # Reads 10 s apart: only the wake-up can end this wait within a second.
    monkeypatch.setattr(waiting, "FIRST_POLL_SECONDS", 10.0)
    outcome = {}

    def wait():
        started = time.monotonic()
        with waiting.RunWait(run.id) as wait:
            outcome["state"] = wait.result(run.id, timeout=20)
        outcome["elapsed"] = time.monotonic() - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # the waiter has subscribed and read "running"
    with django_capture_on_commit_callbacks(execute=True):
        run_finished.send(sender=WorkflowRun, run=run)
    waiter.join(timeout=15)
    assert outcome["state"].status == "succeeded" and outcome["state"].response == {"total": 25.0}
    assert outcome["elapsed"] < 1.5, outcome
    assert len(reads) == 1, "the state came with the wake-up: no second read of the row"


@pytest.fixture
def inline_sync(make_workflow, settings, monkeypatch):
    """A sync workflow `answer` whose runs execute in the request (no worker here), committing and publishing
    before the wait begins; the list of the web's reads of run rows."""
    from api_endpoints import waiting, webhooks
    from workflows import engine

    if not settings.REDIS_AVAILABLE:
        pytest.skip("needs Redis")
    make_workflow("answer", response="sync", parameters=[{"name": "n", "type": "number"}], steps=[
        {"key": "answer", "action": "return_response", "config": {"body": {"got": "{{ params.n }}"}}}])
    reads = []
    real_read = waiting.run_state
    monkeypatch.setattr(waiting, "run_state", lambda run_id: reads.append(run_id) or real_read(run_id))

    class RunThenWait(webhooks.RunWait):
        def result(self, run_id, **kwargs):
            engine.run_execute(run_id)
            return super().result(run_id, **kwargs)

    monkeypatch.setattr(webhooks, "RunWait", RunThenWait)
    return reads


@pytest.mark.django_db(transaction=True)
def test_a_sync_call_answers_without_reading_its_new_runs_row(inline_sync, admin_token):
    """A sync call subscribes before it enqueues its run, and its run's wake-up carries the answer: the
    web reads the run's row neither before nor after (two queries fewer per call)."""
    response = post_json(Client(), "/api/wf/answer?n=7", {}, **bearer(admin_token))
    assert response.status_code == 200, response.content
    assert response.json() == {"got": 7}
    assert inline_sync == []


@pytest.mark.django_db(transaction=True)
def test_a_state_too_large_for_the_wake_up_is_read_from_the_row(inline_sync, admin_token, monkeypatch):
    """Past STATE_MESSAGE_BYTES the wake-up is bare and the caller reads its answer from the row, at once."""
    import time

    from api_endpoints import waiting

    monkeypatch.setattr(waiting, "STATE_MESSAGE_BYTES", 10)
    monkeypatch.setattr(waiting, "FIRST_POLL_SECONDS", 10.0)  # only the wake-up can end the wait soon
    started = time.monotonic()
    response = post_json(Client(), "/api/wf/answer?n=8", {}, **bearer(admin_token))
    assert response.status_code == 200 and response.json() == {"got": 8}, response.content
    assert time.monotonic() - started < 5
    assert len(inline_sync) == 1


@pytest.mark.django_db(transaction=True)
def test_a_replayed_sync_call_answers_with_the_earlier_runs_answer(inline_sync, admin_token, monkeypatch):
    """A sync call repeated with its Idempotency-Key waits on the earlier run, not on the id it made, and
    answers with that run's response at once, marked as a replay."""
    import time

    from api_endpoints import waiting

    first = post_json(Client(), "/api/wf/answer?n=1", {}, HTTP_IDEMPOTENCY_KEY="order-9", **bearer(admin_token))
    monkeypatch.setattr(waiting, "FIRST_POLL_SECONDS", 10.0)  # a wait on the wrong channel would show
    started = time.monotonic()
    again = post_json(Client(), "/api/wf/answer?n=2", {}, HTTP_IDEMPOTENCY_KEY="order-9", **bearer(admin_token))
    assert first.json() == again.json() == {"got": 1}, (first.content, again.content)
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert time.monotonic() - started < 5
    assert WorkflowRun.objects.count() == 1


def test_a_threads_waits_share_one_redis_connection_and_survive_losing_it(settings, monkeypatch):
    """Sync calls served by one thread wait on one subscriber connection, kept from call to call (a new one
    per call cost ~1.4 ms of CPU); when Redis drops it, the next call connects again and still wakes at once."""
    import threading
    import time
    import uuid

    import redis

    from api_endpoints import waiting

    if not settings.REDIS_AVAILABLE:
        pytest.skip("needs Redis")
    name = f"waiting-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(waiting, "_redis", lambda: redis.Redis.from_url(settings.REDIS_URL, client_name=name))
    # A run reads "running" until its finish is published: only the wake-up ends a wait within seconds.
    finished: set[str] = set()
    monkeypatch.setattr(waiting, "run_state", lambda run_id: waiting.RunState(
        str(run_id), "succeeded" if str(run_id) in finished else "running", None, "", ""))
    monkeypatch.setattr(waiting, "FIRST_POLL_SECONDS", 10.0)
    admin = redis.Redis.from_url(settings.REDIS_URL)

    def subscribers() -> list[str]:
        return [client["id"] for client in admin.client_list() if client.get("name") == name]

    runs = [WorkflowRun(id=str(uuid.uuid4()), workflow_name="x", trigger="webhook") for _ in range(4)]
    turns = [threading.Event() for _ in runs]
    outcomes = []

    def wait_each():
        for turn, run in zip(turns, runs, strict=True):
            turn.wait(timeout=10)
            started = time.monotonic()
            with waiting.RunWait(run.id) as wait:
                state = wait.result(run.id, timeout=20)
            outcomes.append((state.status, time.monotonic() - started, subscribers()))

    waiter = threading.Thread(target=wait_each)
    waiter.start()
    try:
        for number, (turn, run) in enumerate(zip(turns, runs, strict=True)):
            if number == 2:
                # Redis drops the thread's connection between two calls.
                admin.client_kill_filter(_id=subscribers()[0])
            turn.set()
            channel = waiting.run_channel(run.id)
            deadline = time.monotonic() + 5
            while admin.pubsub_numsub(channel)[0][1] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            finished.add(str(run.id))
            admin.publish(channel, "changed")
            while len(outcomes) <= number and time.monotonic() < deadline + 15:
                time.sleep(0.01)
    finally:
        waiter.join(timeout=30)
    assert [status for status, _, _ in outcomes] == ["succeeded"] * 4, outcomes
    assert all(elapsed < 1.5 for _, elapsed, _ in outcomes), outcomes
    connections = [ids for _, _, ids in outcomes]
    # One connection for the first two calls; after the drop, one new one for the next two.
    assert all(len(ids) == 1 for ids in connections), connections
    assert connections[0] == connections[1] and connections[2] == connections[3] != connections[0], connections


def test_only_a_sync_calls_run_is_announced(make_workflow, settings, django_capture_on_commit_callbacks):
    """A finished run of a sync workflow is published to its waiting caller; an async call's (answered 202,
    no one waits) costs no publish."""
    import time

    import redis

    from api_endpoints import waiting
    from logs.signals import run_finished

    if not settings.REDIS_AVAILABLE:
        pytest.skip("needs Redis")
    runs = {}
    for mode in ("sync", "async"):
        workflow = make_workflow(f"answer_{mode}", response=mode)
        runs[mode] = WorkflowRun(id=f"8d6f9a1c-0000-4000-8000-00000000000{len(runs) + 2}", workflow_name=workflow.name,
                                 trigger="webhook", version=workflow.live_version)
    subscription = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    subscription.subscribe(*(waiting.run_channel(run.id) for run in runs.values()))
    for run in runs.values():
        with django_capture_on_commit_callbacks(execute=True):
            run_finished.send(sender=WorkflowRun, run=run)
    heard, deadline = [], time.monotonic() + 2
    while time.monotonic() < deadline:
        message = subscription.get_message(timeout=0.2)
        if message:
            heard.append(message["channel"].decode())
    subscription.close()
    assert heard == [waiting.run_channel(runs["sync"].id)]


def test_a_used_up_workload_budget_is_a_429(make_workflow, admin_token, monkeypatch):
    """When enqueueing is refused for the monthly WU budget, the caller gets a 429 saying so."""
    from api_endpoints import webhooks
    from logs.budget import BudgetExceededError

    def refuse(**kwargs):
        raise BudgetExceededError("The monthly workload budget of 100 WU is used up.")

    monkeypatch.setattr(webhooks, "run_enqueue", refuse)
    make_workflow()
    response = post_json(Client(), "/api/wf/echo", {}, **bearer(admin_token))
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited" and "budget" in response.json()["detail"]
