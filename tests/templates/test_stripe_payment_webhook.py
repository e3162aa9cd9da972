"""Template 2, Stripe payment webhook: a signed invoice.paid updates the subscription, unlocks the plan and
tells sales once — however often Stripe delivers the same event."""
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone

from api_endpoints.models import IdempotencyKey
from api_endpoints.signatures import stripe_sign
from datastore.models import Record
from datastore.selectors import data_type_get
from datastore.services import record_create
from logs.models import WorkflowRun
from tests.templates.conftest import body_text
from workflows.services import secret_set

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_template_test_5f0c2a"
PERIOD_END = int(datetime(2030, 1, 31, tzinfo=UTC).timestamp())


def invoice_paid(event_id: str) -> dict:
    """An invoice.paid event shaped as Stripe sends it (the parts the template reads, and some it ignores)."""
    return {
        "id": event_id, "object": "event", "type": "invoice.paid", "api_version": "2024-06-20",
        "created": int(time.time()), "livemode": False,
        "data": {"object": {
            "id": "in_1PQ", "object": "invoice", "customer": "cus_ada", "customer_email": "ada@acme.test",
            "subscription": "sub_team_1", "amount_paid": 4900, "currency": "usd", "status": "paid",
            "lines": {"object": "list", "data": [{"id": "il_1", "price": {"id": "price_1", "lookup_key": "team"},
                                                  "period": {"start": PERIOD_END - 30 * 86400, "end": PERIOD_END}}]},
        }},
    }


def deliver(stack, event: dict, secret: str = SECRET) -> requests.Response:
    """POST the event with a fresh Stripe-Signature, as each of Stripe's deliveries carries."""
    body = json.dumps(event).encode()
    return requests.post(f"{stack.base}/api/wf/stripe_payment_webhook", data=body, timeout=30, headers={
        "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": stripe_sign(secret, body)})


def test_a_paid_invoice_updates_unlocks_and_notifies_once_even_when_delivered_again(stack):
    stack.install("stripe-payment-webhook")
    secret_set(name="STRIPE_WEBHOOK_SECRET", value=SECRET)
    users = data_type_get(name="user")
    ada = record_create(data_type=users, fields={"email": "ada@acme.test", "plan": "free", "stripe_customer_id": "cus_ada"})
    bob = record_create(data_type=users, fields={"email": "bob@other.test", "plan": "free", "stripe_customer_id": "cus_bob"})
    subscription = record_create(data_type=data_type_get(name="subscription"), fields={
        "customer_id": "cus_ada", "status": "past_due", "plan": "pro", "amount": 29})
    stack.start()

    event = invoice_paid("evt_1PQpaid")
    first = deliver(stack, event)
    again = deliver(stack, event)  # Stripe retries when our answer is slow or lost
    assert first.status_code == again.status_code == 202, first.text
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    run = stack.run_of(first)
    assert run.status == "succeeded", run.error

    subscription.refresh_from_db()
    assert subscription.data == {
        "customer_id": "cus_ada", "status": "active", "plan": "team", "amount": 49, "currency": "USD",
        "paid_at": subscription.data["paid_at"], "paid_until": "2030-01-31T00:00:00Z",
        "stripe_subscription_id": "sub_team_1", "last_event_id": "evt_1PQpaid"}
    ada.refresh_from_db()
    bob.refresh_from_db()
    assert (ada.data["plan"], ada.data["plan_expires_at"]) == ("team", "2030-01-31T00:00:00Z")
    assert bob.data["plan"] == "free" and "plan_expires_at" not in bob.data
    [notice] = stack.mail(1)
    assert notice["To"] == "sales@example.com"
    assert notice["Subject"] == "Payment: 49.00 USD for team from ada@acme.test"
    assert "paid until 2030-01-31" in body_text(notice) and "Users unlocked: 1." in body_text(notice)

    # A delivery after the run finished, and one after the 72-hour idempotency window: nothing changes twice.
    late = deliver(stack, event)
    assert late.json()["run_id"] == first.json()["run_id"]
    modified = subscription.modified
    IdempotencyKey.objects.filter(key="evt_1PQpaid").update(created=timezone.now() - timedelta(hours=73))
    much_later = deliver(stack, event)
    assert much_later.status_code == 202 and much_later.json()["run_id"] != first.json()["run_id"]
    replay = stack.run_of(much_later)
    assert replay.status == "terminated"
    assert [step.key for step in replay.steps.order_by("index") if step.status == "succeeded"] == [
        "event", "find", "seen"]
    subscription.refresh_from_db()
    assert subscription.modified == modified

    # Other event types are logged as skipped runs; a forged signature is refused before anything runs.
    other = deliver(stack, {**invoice_paid("evt_2other"), "type": "customer.created"})
    assert stack.run_of(other).status == "skipped"
    assert deliver(stack, invoice_paid("evt_3forged"), secret="whsec_not_ours").status_code == 401

    stack.quiet(1)
    assert len(stack.smtp.envelopes) == 1
    assert Record.objects.filter(data_type__name="subscription").count() == 1
    assert sorted(WorkflowRun.objects.filter(workflow_name="stripe_payment_webhook").values_list("status", flat=True)) == [
        "skipped", "succeeded", "terminated"]


def test_the_first_payment_of_a_new_customer_creates_the_subscription(stack):
    """No subscription record yet: the template creates one instead of updating."""
    stack.install("stripe-payment-webhook")
    secret_set(name="STRIPE_WEBHOOK_SECRET", value=SECRET)
    stack.start()
    answer = deliver(stack, invoice_paid("evt_new_customer"))
    assert stack.run_of(answer).status == "succeeded"
    [created] = Record.objects.filter(data_type__name="subscription")
    assert (created.data["customer_id"], created.data["plan"], created.data["status"]) == ("cus_ada", "team", "active")
    assert stack.mail(1)[0]["Subject"].startswith("Payment: 49.00 USD")
