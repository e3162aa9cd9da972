"""Workload units: a run's WU is the cost table applied to what it did, and every page adds it up alike."""
import pytest
from django.core import mail
from django.urls import reverse
from werkzeug import Response

from datastore.services import record_create
from logs.models import StepRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_workflow(make_workflow, invoices, httpserver):
    """Reads 3 records, writes 1, changes 4, makes one HTTP call, sends one email, skips one step."""
    for amount in (10, 20, 30):
        record_create(data_type=invoices, fields={"amount": amount, "status": "open"})
    httpserver.expect_request("/notify").respond_with_response(Response("{}", content_type="application/json"))
    return make_workflow("busy", steps=[
        {"key": "open", "action": "find_records", "config": {"type": "invoice", "filter": {"status": "open"}}},
        {"key": "new", "action": "create_record", "config": {"type": "invoice", "fields": {"amount": 40, "status": "open"}}},
        {"key": "close", "action": "update_records",
         "config": {"type": "invoice", "filter": {"status": "open"}, "fields": {"status": "closed"}}},
        {"key": "notify", "action": "http_request", "config": {"method": "POST", "url": httpserver.url_for("/notify")}},
        {"key": "mail", "action": "send_email", "config": {"to": "ops@example.com", "subject": "Closed", "body": "4"}},
        {"key": "never", "action": "set_values", "only_when": "{{ false }}", "config": {"values": {"a": 1}}},
    ])


def test_a_runs_wu_is_the_cost_table_applied_to_what_it_did(busy_workflow, start_run, settings, editor_client):
    costs = settings.ENGINE_ROOM_WU_COSTS
    run = start_run(busy_workflow)
    assert run.status == "succeeded", run.error
    assert len(mail.outbox) == 1

    expected_steps = {
        "open": costs["step"] + 3 * costs["record_read"],
        "new": costs["step"] + costs["record_written"],
        "close": costs["step"] + 4 * costs["record_written"],
        "notify": costs["step"] + costs["http_request"],
        "mail": costs["step"] + costs["email"],
        "never": 0,
    }
    steps = {step.key: step.wu for step in StepRun.objects.filter(run=run)}
    assert steps == pytest.approx(expected_steps)
    assert run.wu == pytest.approx(costs["run"] + sum(expected_steps.values()))
    assert run.wu == pytest.approx(1.98)

    # The run's page, the dashboard and the export all say the same number.
    assert "1.98 WU" in editor_client.get(reverse("logs-run", args=[run.id])).content.decode()
    data = editor_client.get(reverse("logs-metrics")).json()
    assert data["last_24h"]["wu"] == pytest.approx(1.98)
    assert data["days"]["wu"]["busy"][-1] == pytest.approx(1.98)
    assert data["days"]["wu_month"] == [{"name": "busy", "wu": pytest.approx(1.98)}]
    export = editor_client.get(reverse("logs-export", args=["jsonl"])).getvalue().decode()
    assert '"wu": 1.98' in export


def test_a_failed_attempt_costs_a_step_and_no_action(make_workflow, start_run, settings, httpserver):
    costs = settings.ENGINE_ROOM_WU_COSTS
    httpserver.expect_request("/gone").respond_with_data("gone", status=404)
    workflow = make_workflow("calls", steps=[
        {"key": "call", "action": "http_request", "config": {"url": httpserver.url_for("/gone")}},
    ])
    run = start_run(workflow)
    (step,) = StepRun.objects.filter(run=run)
    assert run.status == "failed" and step.status == "failed"
    assert step.wu == pytest.approx(costs["step"])
    assert run.wu == pytest.approx(costs["run"] + costs["step"])
