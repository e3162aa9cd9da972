"""Replays of signed webhooks: Stripe-signed calls outside the tolerance window (either way) are
refused; a replay inside it is answered with the first run (the event id is the idempotency key); an
HMAC-signed sender's delivery id does the same job for the generic mode, which has no timestamp."""
import hmac
import json
import time

import pytest
from django.test import Client

from api_endpoints.signatures import hmac_sign, stripe_sign
from logs.models import WorkflowRun

pytestmark = pytest.mark.django_db

EVENT = json.dumps({"id": "evt_replayed_1", "type": "invoice.paid"}).encode()


def deliver(body: bytes, header: str, name="stripe_in", **extra):
    return Client().post(f"/api/wf/{name}", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header,
                         **extra)


@pytest.fixture
def stripe_workflow(make_workflow, signing_secret):
    make_workflow("stripe_in", auth="stripe", signing_secret="SIGNING")
    return signing_secret


@pytest.mark.parametrize("offset, status", [(-301, 401), (301, 401), (-3600 * 24, 401), (-290, 202), (290, 202)])
def test_stripe_timestamps_outside_the_tolerance_are_refused_either_way(stripe_workflow, offset, status):
    header = stripe_sign(stripe_workflow, EVENT, timestamp=int(time.time()) + offset)
    assert deliver(EVENT, header).status_code == status


def test_the_tolerance_is_a_setting(stripe_workflow, settings):
    settings.ENGINE_ROOM_STRIPE_TOLERANCE_SECONDS = 60
    assert deliver(EVENT, stripe_sign(stripe_workflow, EVENT, timestamp=int(time.time()) - 61)).status_code == 401


@pytest.mark.parametrize("header", ["t=abc,v1=00", "v1=00", "t=123", "", "t=,v1="])
def test_malformed_signature_headers_are_refused(stripe_workflow, header):
    assert deliver(EVENT, header).status_code == 401


def test_a_captured_delivery_replayed_inside_the_window_starts_nothing_new(stripe_workflow):
    header = stripe_sign(stripe_workflow, EVENT)
    first = deliver(EVENT, header)
    replay = deliver(EVENT, header)
    assert first.status_code == replay.status_code == 202
    assert replay.json()["run_id"] == first.json()["run_id"] and replay["Idempotent-Replayed"] == "true"
    # The same signature on a changed body is no signature at all.
    assert deliver(EVENT.replace(b"paid", b"void"), header).status_code == 401
    assert WorkflowRun.objects.count() == 1


def test_an_hmac_delivery_id_makes_a_redelivery_one_run(make_workflow, signing_secret):
    make_workflow("github_in", auth="hmac", signing_secret="SIGNING",
                  idempotency_key="{{ request.headers['X-Github-Delivery'] }}")
    body = b'{"ref": "main"}'
    headers = {"HTTP_X_HUB_SIGNATURE_256": hmac_sign(signing_secret, body), "HTTP_X_GITHUB_DELIVERY": "d-1"}
    first = Client().post("/api/wf/github_in", body, content_type="application/json", **headers)
    again = Client().post("/api/wf/github_in", body, content_type="application/json", **headers)
    assert first.status_code == again.status_code == 202 and again.json()["run_id"] == first.json()["run_id"]
    other = Client().post("/api/wf/github_in", body, content_type="application/json",
                          **{**headers, "HTTP_X_GITHUB_DELIVERY": "d-2"})
    assert other.json()["run_id"] != first.json()["run_id"]
    assert WorkflowRun.objects.count() == 2


def test_signatures_are_compared_in_constant_time(monkeypatch, stripe_workflow):
    """Every comparison of a presented signature goes through hmac.compare_digest."""
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("api_endpoints.signatures.hmac.compare_digest", spy)
    deliver(EVENT, stripe_sign("whsec_wrong", EVENT))
    assert compared
