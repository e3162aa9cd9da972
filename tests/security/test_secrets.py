"""Secrets: encrypted with a rotatable key list (rotate_secrets_key), and never shown — not in a log
line, an export, an API answer, a page, an error response or an exception message.
"""
import base64
import io
import json
import logging
import socket
import threading

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client
from werkzeug import Response

from audit.models import AuditEvent
from workflows import engine
from workflows.actions.set_values import SetValues
from workflows.crypto import encrypt
from workflows.models import Secret
from workflows.selectors import secret_reveal
from workflows.services import run_enqueue, secret_set

from .conftest import bearer

pytestmark = pytest.mark.django_db

VALUE = "sk_live_LEAKCANARY_5f3a9b"


def forms_of(value: str) -> list[str]:
    """The spellings a leak could take: as is, JSON-escaped, base64 (a Basic auth header)."""
    return [value, json.dumps(value)[1:-1], base64.b64encode(value.encode()).decode()]


# --- Rotation ---------------------------------------------------------------------------------------


def test_rotation_re_encrypts_every_secret_with_the_newest_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENGINE_ROOM_SECRETS_KEY = [old]
    secret_set(name="A", value="alpha-value")
    secret_set(name="B", value="beta-value")
    settings.ENGINE_ROOM_SECRETS_KEY = [new, old]  # the new key first, the old one still readable

    out = io.StringIO()
    call_command("rotate_secrets_key", "--check", stdout=out)
    assert "2 secret(s) need re-encrypting" in out.getvalue()
    call_command("rotate_secrets_key", stdout=out)
    assert "2 secret(s) re-encrypted, 0 already on the newest key" in out.getvalue()
    assert "alpha-value" not in out.getvalue()

    settings.ENGINE_ROOM_SECRETS_KEY = [new]  # the old key is gone: everything still decrypts
    assert (secret_reveal("A"), secret_reveal("B")) == ("alpha-value", "beta-value")
    for ciphertext in Secret.objects.values_list("ciphertext", flat=True):
        Fernet(new.encode()).decrypt(bytes(ciphertext))
    out = io.StringIO()
    call_command("rotate_secrets_key", stdout=out)
    assert "0 secret(s) re-encrypted, 2 already on the newest key" in out.getvalue()
    assert AuditEvent.objects.filter(action="secrets_key_rotated").count() == 1


def test_a_secret_no_configured_key_opens_is_named_and_the_rest_still_rotate(settings):
    lost, old, new = (Fernet.generate_key().decode() for _ in range(3))
    settings.ENGINE_ROOM_SECRETS_KEY = [lost]
    secret_set(name="ORPHAN", value="x")
    settings.ENGINE_ROOM_SECRETS_KEY = [old]
    secret_set(name="FINE", value="y")
    settings.ENGINE_ROOM_SECRETS_KEY = [new, old]
    with pytest.raises(CommandError, match="ORPHAN"):
        call_command("rotate_secrets_key", stdout=io.StringIO())
    settings.ENGINE_ROOM_SECRETS_KEY = [new]
    assert secret_reveal("FINE") == "y"


def test_secrets_are_stored_encrypted(settings):
    secret_set(name="K", value=VALUE)
    stored = bytes(Secret.objects.get(name="K").ciphertext)
    assert VALUE.encode() not in stored and stored != encrypt(VALUE)  # Fernet tokens are randomized


# --- Nowhere to be seen -------------------------------------------------------------------------------


@pytest.fixture
def leaky_world(make_workflow, admin_token, httpserver, caplog, settings):
    """A workflow that sends the secret out, gets it echoed back, returns it, and fails a step with it."""
    caplog.set_level(logging.DEBUG)
    secret_set(name="API_KEY", value=VALUE)

    def echo(request):
        return Response(json.dumps({"got_auth": request.headers.get("Authorization"),
                                    "got_body": request.get_json(silent=True)}), content_type="application/json")

    httpserver.expect_request("/echo").respond_with_handler(echo)
    httpserver.expect_request("/refuse").respond_with_data(f"denied for key {VALUE}", status=403)
    steps = [
        {"key": "call", "action": "http_request", "config": {
            "method": "POST", "url": httpserver.url_for("/echo"),
            "headers": {"Authorization": "Bearer {{ secrets.API_KEY }}"}, "json": {"key": "{{ secrets.API_KEY }}"}}},
        {"key": "keep", "action": "set_values", "config": {"values": {
            "copy": "{{ secrets.API_KEY }}", "sentence": "key={{ secrets.API_KEY }}", "echoed": "{{ steps.call.body }}"}}},
        {"key": "answer", "action": "return_response", "config": {"body": {"key": "{{ secrets.API_KEY }}"}}},
        {"key": "refused", "action": "http_request", "on_error": "continue", "config": {
            "url": httpserver.url_for("/refuse") + "?key={{ secrets.API_KEY }}", "expect_status": 200}},
        {"key": "missing", "action": "update_record", "config": {
            "type": "nothing_here", "id": "{{ secrets.API_KEY }}", "fields": {}}},
    ]
    workflow = make_workflow("leaky", steps=steps, response="sync", auth="hmac", signing_secret="API_KEY")
    with transaction.atomic():
        queued = run_enqueue(workflow=workflow, params={}, trigger="manual", dispatch_on_commit=False)
    run = engine.run_execute(queued.id)
    assert run.status == "failed" and run.steps.count() == 5
    return {"run": run, "token": admin_token, "caplog": caplog}


def collect(world, client) -> dict[str, str]:
    """Everything a person, a caller or an operator can read about that run, as text."""
    run, token = world["run"], world["token"]
    api = {path: Client().get(path, **bearer(token)).content.decode()
           for path in (f"/api/runs/{run.id}/", "/api/runs/", "/api/secrets/", "/api/secrets/API_KEY/",
                        "/api/workflows/leaky/", "/api/workflows/leaky/versions/")}
    pages = {path: client.get(path).content.decode()
             for path in (f"/logs/runs/{run.id}/", f"/logs/runs/{run.id}/live/", "/logs/", "/logs/rows/",
                          "/logs/events/", "/", "/workflows/leaky/", f"/workflows/leaky/runs/{run.id}/",
                          "/settings/secrets/", "/settings/audit/", f"/admin/logs/workflowrun/{run.id}/change/",
                          "/logs/metrics.json", "/api/docs/")}
    exports = {path: b"".join(client.get(path).streaming_content if client.get(path).streaming
                             else [client.get(path).content]).decode()
               for path in ("/logs/export.csv", "/logs/export.jsonl", "/workflows/leaky/export/",
                            "/workflows/export/")}
    command = io.StringIO()
    call_command("workflows", "export", "--all", stdout=command)
    dump = io.StringIO()
    call_command("dumpdata", "logs", "audit", "api_endpoints", "workflows.workflow", "workflows.workflowversion",
                 stdout=dump)
    return {**api, **pages, **exports, "manage.py workflows export": command.getvalue(),
            "dumpdata": dump.getvalue(), "log records": our_log(world["caplog"])}


def our_log(caplog) -> str:
    """Every log record of this process, messages and tracebacks — but the receiving test server's
    (werkzeug's access log shows what it was sent, which is the point of sending it)."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records
                     if not record.name.startswith(("werkzeug", "pytest_httpserver")))


def test_a_secret_used_sent_echoed_returned_and_failed_on_appears_nowhere(leaky_world, make_user, monkeypatch,
                                                                          settings, django_capture_on_commit_callbacks):
    from api_endpoints import waiting, webhooks

    admin = make_user("admin", username="boss")
    client = Client()
    client.force_login(admin)
    # The same workflow called as a webhook, its run executed in the request (no worker here) so that
    # the sync caller gets the return_response that holds the secret; then a bad signature.
    class RunThenWait(webhooks.RunWait):
        def result(self, run_id, **kwargs):
            engine.run_execute(run_id)
            return super().result(run_id, **kwargs)

    monkeypatch.setattr(webhooks, "RunWait", RunThenWait)
    # What the worker publishes to wake the caller (the run's state) must be masked too.
    published = []
    real_redis = waiting._redis

    class Recording:
        def __getattr__(self, name):
            return getattr(real_redis(), name)

        def publish(self, channel, message):
            published.append(message)
            return real_redis().publish(channel, message)

    monkeypatch.setattr(waiting, "_redis", Recording)
    body = b"{}"
    import hmac as hmac_module

    signature = "sha256=" + hmac_module.new(VALUE.encode(), body, "sha256").hexdigest()
    with django_capture_on_commit_callbacks(execute=True):
        answered = Client().post("/api/wf/leaky", body, content_type="application/json",
                                 HTTP_X_HUB_SIGNATURE_256=signature)
    refused = Client().post("/api/wf/leaky", body, content_type="application/json",
                            HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64)
    assert refused.status_code == 401 and answered.status_code == 200, answered.content
    assert answered.json() == {"key": "••••"}

    texts = {**collect(leaky_world, client), "webhook answer": answered.content.decode(),
             "webhook answer headers": str(dict(answered.headers)), "refusal": refused.content.decode(),
             "wake-up messages": " ".join(published)}
    run = leaky_world["run"]
    texts["run error"] = run.error
    texts["step errors"] = " | ".join(run.steps.values_list("error", flat=True))
    leaks = [f"{where}: …{text[max(0, text.find(form) - 60):text.find(form) + 40]}…"
             for where, text in texts.items() for form in forms_of(VALUE) if form in text]
    assert not leaks, "\n".join(leaks)
    assert published or not settings.REDIS_AVAILABLE, "the run's state was published to its caller"
    # The run did use the secret: the masked marks are where it was.
    assert "••••" in texts[f"/api/runs/{run.id}/"] and "••••" in texts["step errors"]


def test_an_unexpected_exception_carrying_the_secret_is_masked_in_the_log_too(make_workflow, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    secret_set(name="API_KEY", value=VALUE)

    def crash(self, *, config, context):
        raise RuntimeError(f"could not use {config['values']}")

    monkeypatch.setattr(SetValues, "run", crash)
    workflow = make_workflow("crashy", steps=[
        {"key": "s", "action": "set_values", "config": {"values": {"k": "{{ secrets.API_KEY }}"}}}])
    with transaction.atomic():
        queued = run_enqueue(workflow=workflow, params={}, trigger="manual", dispatch_on_commit=False)
    run = engine.run_execute(queued.id)
    assert run.status == "failed" and VALUE not in run.error and "RuntimeError" in run.error
    assert VALUE not in our_log(caplog)


@pytest.fixture
def malformed_header_server():
    """A loopback server answering once with a header line that has no colon (werkzeug cannot send one)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nthis line has no colon\r\n"
                               b"Connection: close\r\n\r\nok")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    thread.join(timeout=5)
    listener.close()


@pytest.mark.parametrize("after_a_child_run", [False, True])
def test_urllib3_warning_about_a_url_holding_the_secret_is_logged_masked(make_workflow, malformed_header_server,
                                                                          caplog, after_a_child_run):
    secret_set(name="API_KEY", value=VALUE)
    steps = [{"key": "call", "action": "http_request", "config": {
        "url": malformed_header_server + "/status?key={{ secrets.API_KEY }}"}}]
    if after_a_child_run:
        # A child run started inline masks with its own scope while it runs; the parent's is back after it.
        make_workflow("child", steps=[{"key": "s", "action": "set_values", "config": {"values": {"n": 1}}}])
        steps.insert(0, {"key": "child", "action": "run_workflow", "config": {"workflow": "child", "params": {}}})
    workflow = make_workflow("malformed", steps=steps)
    with transaction.atomic():
        queued = run_enqueue(workflow=workflow, params={}, trigger="manual", dispatch_on_commit=False)
    run = engine.run_execute(queued.id)

    assert run.status == "succeeded"
    log = our_log(caplog)
    assert "Failed to parse headers (url=http://127.0.0.1:" in log and "key=••••" in log
    assert VALUE not in log
