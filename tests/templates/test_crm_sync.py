"""Template 5, CRM sync: each new lead is posted to HubSpot (here a local stand-in) and gets HubSpot's id back;
a failed call is retried with backoff."""
import json
import time

import pytest
import requests
from werkzeug import Response

from datastore.models import Record
from logs.models import StepRun, WorkflowRun
from tests.integration.conftest import wait_until
from workflows.services import secret_set

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HUBSPOT_PATH = "/crm/v3/objects/contacts"


def test_a_new_lead_reaches_hubspot_after_a_failed_call_and_keeps_its_id(stack, httpserver):
    calls = []

    def hubspot(request):
        calls.append((time.monotonic(), request.headers, request.get_json()))
        if len(calls) == 1:
            return Response('{"status": "error", "message": "Service unavailable"}', status=503,
                            content_type="application/json")
        return Response(json.dumps({"id": "1201", "properties": request.get_json()["properties"],
                                    "createdAt": "2025-03-01T10:00:00Z"}), status=201, content_type="application/json")

    httpserver.expect_request(HUBSPOT_PATH, method="POST").respond_with_handler(hubspot)

    def to_local_hubspot(bundle):
        # The one adaptation a test needs: HubSpot's host becomes the local stand-in.
        bundle["workflows"][0]["steps"][0]["config"]["url"] = httpserver.url_for(HUBSPOT_PATH)

    stack.install("crm-sync", change=to_local_hubspot)
    secret_set(name="HUBSPOT_TOKEN", value="pat-na1-test-0123")
    stack.start()

    # A lead created through the REST API, as a sign-up form's backend would.
    created = requests.post(f"{stack.base}/api/records/lead/", timeout=30,
                            headers={"Authorization": f"Bearer {stack.token}"},
                            json={"email": "grace@navy.test", "first_name": "Grace", "last_name": "Hopper",
                                  "company": "Navy"})
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]

    lead = wait_until(lambda: Record.objects.filter(pk=lead_id, data__hubspot_id="1201").first(), timeout=60,
                      message=f"the HubSpot id on the lead\n{stack.processes.logs()}")
    assert lead.data["synced_at"] > created.json()["created"]
    assert len(calls) == 2
    (first_at, first_headers, first_body), (second_at, second_headers, second_body) = calls
    assert first_body == second_body == {"properties": {"email": "grace@navy.test", "firstname": "Grace",
                                                        "lastname": "Hopper", "company": "Navy"}}
    assert first_headers["Authorization"] == second_headers["Authorization"] == "Bearer pat-na1-test-0123"
    # The same Idempotency-Key on both attempts lets the receiver drop a repeat of a call that did land.
    assert first_headers["Idempotency-Key"] == second_headers["Idempotency-Key"]
    assert second_at - first_at >= 4.5, "the retry waited out its backoff (5 s)"

    run = WorkflowRun.objects.get(workflow_name="crm_sync_lead")
    assert (run.trigger, run.status) == ("record", "succeeded")
    attempts = list(StepRun.objects.filter(run=run, key="contact").order_by("attempt"))
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert "503" in attempts[0].error
    assert attempts[1].input["headers"]["Authorization"] == "Bearer ••••", "the token never reaches the logs"
    assert StepRun.objects.get(run=run, key="save").status == "succeeded"
