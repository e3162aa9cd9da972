"""/api/scheduled/ and /api/recurring/: schedule, pause, resume, cancel, and recurring events, by API."""
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.models import RecurringEvent, ScheduledRun
from tests.api_endpoints.conftest import bearer

pytestmark = pytest.mark.django_db


def post(client, path, body, token):
    return client.post(path, body, content_type="application/json", **bearer(token))


def test_a_run_scheduled_by_api_can_be_paused_resumed_and_cancelled(client, make_workflow, admin_token):
    make_workflow("later")
    before = timezone.now()
    created = post(client, "/api/scheduled/", {"workflow": "later", "delay_seconds": 3600}, admin_token)
    assert created.status_code == 201, created.json()
    row = created.json()
    assert row["status"] == "pending" and row["workflow"] == "later"
    assert ScheduledRun.objects.get().due_at >= before + timedelta(seconds=3600)

    listed = client.get("/api/scheduled", **bearer(admin_token)).json()
    assert [r["id"] for r in listed["results"]] == [row["id"]]
    assert post(client, f"/api/scheduled/{row['id']}/pause/", {}, admin_token).json()["status"] == "paused"
    assert post(client, f"/api/scheduled/{row['id']}/resume", {}, admin_token).json()["status"] == "pending"
    assert post(client, f"/api/scheduled/{row['id']}/cancel", {}, admin_token).json()["status"] == "cancelled"
    assert client.get("/api/scheduled/", **bearer(admin_token)).json()["count"] == 0


def test_scheduling_errors_name_the_field(client, make_workflow, admin_token):
    make_workflow("later", parameters=[{"name": "n", "type": "integer", "required": True}])
    both = post(client, "/api/scheduled/", {"workflow": "later", "delay_seconds": 5, "at": "2030-01-01T00:00:00Z",
                                            "params": {"n": 1}}, admin_token)
    assert both.status_code == 400 and "at" in both.json()["fields"]
    bad_param = post(client, "/api/scheduled/", {"workflow": "later", "delay_seconds": 5, "params": {"n": "x"}},
                     admin_token)
    assert bad_param.status_code == 400 and "n" in str(bad_param.json()["fields"])
    missing = post(client, "/api/scheduled/", {"workflow": "ghost", "delay_seconds": 5}, admin_token)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.get("/api/scheduled/not-an-id", **bearer(admin_token)).status_code == 404
    assert not ScheduledRun.objects.exists()


def test_recurring_events_are_created_changed_paused_and_deleted(client, make_workflow, admin_token):
    make_workflow("nightly")
    created = post(client, "/api/recurring/", {"workflow": "nightly", "frequency": "daily",
                                               "timezone": "Europe/Berlin", "start": "2030-01-01T02:30:00+01:00"},
                   admin_token)
    assert created.status_code == 201, created.json()
    event = created.json()
    assert event["next_fire_at"].startswith("2030-01-01T01:30:00") and event["missed"] == "catch_up"

    changed = client.patch(f"/api/recurring/{event['id']}/", {"frequency": {"every": 5, "unit": "minutes"}},
                           content_type="application/json", **bearer(admin_token))
    assert changed.status_code == 200 and changed.json()["frequency"] == {"every": 5, "unit": "minutes"}
    paused = client.patch(f"/api/recurring/{event['id']}", {"enabled": False},
                          content_type="application/json", **bearer(admin_token))
    assert paused.json()["enabled"] is False and RecurringEvent.objects.get().periodic_task.enabled is False

    assert client.delete(f"/api/recurring/{event['id']}", **bearer(admin_token)).status_code == 204
    assert not RecurringEvent.objects.exists()


def test_a_bad_frequency_is_a_400_naming_it(client, make_workflow, admin_token):
    make_workflow("nightly")
    response = post(client, "/api/recurring/", {"workflow": "nightly", "frequency": {"every": 0, "unit": "eons"}},
                    admin_token)
    assert response.status_code == 400 and "frequency" in response.json()["fields"]


def test_viewers_read_but_cannot_schedule(session_client, make_workflow):
    make_workflow("later")
    viewer = session_client("viewer")
    assert viewer.get("/api/scheduled/").status_code == 200
    response = viewer.post("/api/scheduled/", {"workflow": "later", "delay_seconds": 5}, content_type="application/json")
    assert response.status_code == 403
    assert not ScheduledRun.objects.exists()
