"""Webhooks end to end: a real HTTP client against the running app (live_server), with a real Celery worker."""
import json
import time

import pytest
import requests

from api_endpoints.signatures import hmac_sign, stripe_sign
from datastore.selectors import data_type_get, record_find
from datastore.services import data_type_create, record_create
from logs.models import WorkflowRun
from tests.api_endpoints import conftest as api_fixtures
from tests.integration.conftest import wait_until

# The API tests' fixtures, shared here rather than copied.
_fresh_caches = api_fixtures._fresh_caches
make_workflow = api_fixtures.make_workflow
admin_token = api_fixtures.admin_token
signing_secret = api_fixtures.signing_secret

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _status_of(url, token):
    return requests.get(url, headers=_auth(token), timeout=10).json()["status"]


def test_token_public_and_hmac_calls_run_on_a_worker(live_server, processes, make_workflow, admin_token,
                                                     signing_secret):
    """Token, public and HMAC-signed calls all run to `succeeded`; a tampered signature is refused with 401."""
    make_workflow("by_token", parameters=[{"name": "n", "type": "integer", "required": True}])
    make_workflow("by_anyone", auth="public")
    make_workflow("by_github", auth="hmac", signing_secret="SIGNING")
    processes.worker()
    base = live_server.url

    queued = requests.post(f"{base}/api/wf/by_token", json={"n": 3}, headers=_auth(admin_token), timeout=10)
    assert queued.status_code == 202, queued.text
    status_url = queued.json()["status_url"]
    assert status_url == f"{base}/api/runs/{queued.json()['run_id']}"
    assert wait_until(lambda: _status_of(status_url, admin_token) == "succeeded", message="token run")
    run = requests.get(status_url, headers=_auth(admin_token), timeout=10).json()
    assert run["steps"][0]["output"] == {"got": {"n": 3}}

    public = requests.post(f"{base}/api/wf/by_anyone/", data={"x": "1"}, timeout=10)
    assert public.status_code == 202
    assert wait_until(lambda: _status_of(public.json()["status_url"], admin_token) == "succeeded", message="public run")

    body = json.dumps({"ref": "refs/heads/main"}).encode()
    signed = requests.post(f"{base}/api/wf/by_github", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": hmac_sign(signing_secret, body)})
    tampered = requests.post(f"{base}/api/wf/by_github", data=body.replace(b"main", b"evil"), timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": hmac_sign(signing_secret, body)})
    assert signed.status_code == 202
    assert tampered.status_code == 401
    assert tampered.json() == {"error": "unauthorized", "detail": tampered.json()["detail"], "fields": {}}
    assert wait_until(lambda: _status_of(signed.json()["status_url"], admin_token) == "succeeded", message="hmac run")
    assert WorkflowRun.objects.filter(workflow_name="by_github").count() == 1


def test_sync_calls_answer_with_return_response_or_502(live_server, processes, make_workflow, admin_token):
    """A sync call answers with the return_response status, headers and body, or with the run's summary
    when there is none; a run that fails first is a 502 with its id and error code."""
    make_workflow("quote", response="sync", parameters=[{"name": "qty", "type": "integer", "required": True}], steps=[
        {"key": "price", "action": "set_values", "config": {"values": {"total": "{{ params.qty * 5 }}"}}},
        {"key": "answer", "action": "return_response", "config": {
            "status": 201, "headers": {"X-Quote": "yes"}, "body": {"total": "{{ steps.price.total }}"}}},
        {"key": "after", "action": "set_values", "config": {"values": {"done": True}}},
    ])
    make_workflow("no_answer", response="sync")
    make_workflow("broken", response="sync", steps=[
        {"key": "fail", "action": "update_record", "config": {"type": "missing_type", "id": "x", "fields": {}}},
    ])
    processes.worker()
    answer = requests.post(f"{live_server.url}/api/wf/quote", json={"qty": 4}, headers=_auth(admin_token), timeout=40)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"total": 20}
    assert answer.headers["X-Quote"] == "yes"
    bubble = requests.post(f"{live_server.url}/api/1.1/wf/quote", json={"qty": 1}, headers=_auth(admin_token), timeout=40)
    assert bubble.json() == {"status": "success", "response": {"total": 5}}

    summary = requests.post(f"{live_server.url}/api/wf/no_answer", json={}, headers=_auth(admin_token), timeout=40)
    assert summary.status_code == 200
    assert summary.json()["status"] == "succeeded" and summary.json()["status_url"].endswith(summary.json()["run_id"])

    failed = requests.post(f"{live_server.url}/api/wf/broken", json={}, headers=_auth(admin_token), timeout=40)
    assert failed.status_code == 502
    body = failed.json()
    assert body["error"] == "workflow_failed" and body["error_code"] == "step_failed"
    assert WorkflowRun.objects.get(id=body["run_id"]).status == "failed"


def test_sync_past_the_wait_answers_202_and_the_run_goes_on(live_server, processes, make_workflow, admin_token):
    """With no worker free, a sync call answers 202 after sync_wait_seconds; the run finishes later."""
    make_workflow("slow_sync", response="sync", sync_wait_seconds=1)
    started = time.monotonic()
    waiting = requests.post(f"{live_server.url}/api/wf/slow_sync", json={}, headers=_auth(admin_token), timeout=20)
    assert waiting.status_code == 202
    assert 1 <= time.monotonic() - started < 10
    assert waiting.json()["status"] == "queued"
    processes.worker()
    assert wait_until(lambda: _status_of(waiting.json()["status_url"], admin_token) == "succeeded", message="late run")


def test_stripe_event_updates_the_subscription_once(live_server, processes, make_workflow, signing_secret):
    """A Stripe-signed event updates the matching subscription record; its retry starts no second run."""
    data_type_create(name="subscription", fields=[
        {"name": "stripe_id", "type": "text"}, {"name": "status", "type": "text"}, {"name": "plan", "type": "text"}])
    subscriptions = data_type_get(name="subscription")
    record_create(data_type=subscriptions, fields={"stripe_id": "sub_1", "status": "active", "plan": "pro"})
    record_create(data_type=subscriptions, fields={"stripe_id": "sub_2", "status": "active", "plan": "team"})
    make_workflow("stripe_events", auth="stripe", signing_secret="SIGNING",
                  parameters=[{"name": "type", "type": "text", "required": True}, {"name": "data", "type": "object"}],
                  only_when="{{ params.type == 'customer.subscription.updated' }}",
                  steps=[
                      {"key": "find", "action": "find_records", "config": {
                          "type": "subscription", "filter": {"stripe_id": "{{ params.data.object.id }}"}, "limit": 1}},
                      {"key": "save", "action": "update_record", "config": {
                          "type": "subscription", "id": "{{ steps.find.records[0].id }}",
                          "fields": {"status": "{{ params.data.object.status }}"}}},
                  ])
    processes.worker()
    event = {
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "customer.subscription.updated",
        "created": int(time.time()), "livemode": False,
        "data": {"object": {"id": "sub_1", "object": "subscription", "status": "past_due", "customer": "cus_9"}},
    }
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": stripe_sign(signing_secret, body)}
    first = requests.post(f"{live_server.url}/api/wf/stripe_events", data=body, headers=headers, timeout=10)
    retry = requests.post(f"{live_server.url}/api/wf/stripe_events", data=body, timeout=10, headers={
        **headers, "Stripe-Signature": stripe_sign(signing_secret, body)})
    assert first.status_code == retry.status_code == 202, first.text
    assert retry.json()["run_id"] == first.json()["run_id"]
    assert retry.headers["Idempotent-Replayed"] == "true"

    def statuses():
        return {r.data["stripe_id"]: r.data["status"] for r in record_find(data_type=subscriptions)}

    assert wait_until(lambda: statuses()["sub_1"] == "past_due", message="subscription update")
    assert statuses()["sub_2"] == "active"
    assert WorkflowRun.objects.filter(workflow_name="stripe_events").count() == 1
    forged = requests.post(f"{live_server.url}/api/wf/stripe_events", data=body, timeout=10, headers={
        **headers, "Stripe-Signature": stripe_sign("whsec_wrong", body)})
    assert forged.status_code == 401


def test_simultaneous_deliveries_with_one_key_start_one_run(live_server, make_workflow, admin_token):
    """Eight concurrent calls with the same Idempotency-Key (a sender's burst of retries) start one run."""
    from concurrent.futures import ThreadPoolExecutor

    make_workflow("orders")

    def deliver(_):
        return requests.post(f"{live_server.url}/api/wf/orders", json={"n": 1}, timeout=20,
                             headers={**_auth(admin_token), "Idempotency-Key": "burst-1"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(deliver, range(8)))
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.json()["run_id"] for answer in answers}) == 1
    assert sum(answer.headers.get("Idempotent-Replayed") == "true" for answer in answers) == 7
    assert WorkflowRun.objects.filter(workflow_name="orders").count() == 1
