"""The scheduler pages: pending runs with pause/resume/cancel, recurring events, batches with progress."""
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduler.models import RecurringEvent, ScheduledRun
from scheduler.recurrence import zone
from scheduler.services import batch_create, recurring_event_create, scheduled_run_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="ada", password="x"))
    return client


@pytest.fixture
def greet(make_workflow):
    return make_workflow("greet", parameters=[{"name": "name", "type": "text"}])


def soon(hours=1):
    return timezone.now() + timedelta(hours=hours)


@pytest.mark.parametrize("name", ["scheduler-page", "scheduler-recurring", "scheduler-recurring-new",
                                  "scheduler-batches"])
def test_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_pending_runs_are_listed_and_filtered_by_workflow(signed_in, greet, make_workflow):
    other = make_workflow("other")
    scheduled_run_create(workflow=greet, params={"name": "Ada"}, due_at=soon())
    scheduled_run_create(workflow=other, params={}, due_at=soon())
    html = signed_in.get(reverse("scheduler-page")).content.decode()
    assert "2 scheduled runs" in html and "Ada" in html and 'aria-current="page">Scheduler' in html
    html = signed_in.get(reverse("scheduler-page"), {"workflow": "other"}).content.decode()
    assert "1 scheduled run." in html and "Ada" not in html


def test_an_unknown_filter_value_is_not_an_error(signed_in):
    response = signed_in.get(reverse("scheduler-page"), {"workflow": "nope", "status": "weird", "page": "x"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


def test_pause_resume_and_cancel_one(signed_in, greet):
    row = scheduled_run_create(workflow=greet, params={"name": "Ada"}, due_at=soon())
    url = reverse("scheduler-scheduled-change")
    response = signed_in.post(url, {"id": row.id, "action": "pause"}, follow=True)
    assert "Paused 1 scheduled run" in response.content.decode()
    assert ScheduledRun.objects.get().status == "paused"
    signed_in.post(url, {"id": row.id, "action": "resume"})
    assert ScheduledRun.objects.get().status == "pending"
    signed_in.post(url, {"id": row.id, "action": "cancel"})
    assert ScheduledRun.objects.get().status == "cancelled"


def test_cancel_selected(signed_in, greet):
    rows = [scheduled_run_create(workflow=greet, params={"name": n}, due_at=soon()) for n in "abc"]
    response = signed_in.post(reverse("scheduler-scheduled-change"),
                              {"ids": [rows[0].id, rows[2].id], "action": "cancel",
                               "next": reverse("scheduler-page") + "?workflow=greet"})
    assert response["Location"] == reverse("scheduler-page") + "?workflow=greet"
    assert sorted(ScheduledRun.objects.filter(status="cancelled").values_list("params__name", flat=True)) == ["a", "c"]


def test_bad_ids_and_empty_selections_say_so(signed_in):
    url = reverse("scheduler-scheduled-change")
    html = signed_in.post(url, {"ids": ["nope"], "action": "cancel"}, follow=True).content.decode()
    assert "Invalid scheduled run id" in html
    html = signed_in.post(url, {"action": "cancel"}, follow=True).content.decode()
    assert "Select at least one" in html


def test_create_a_recurring_event_and_see_its_next_five_fires(signed_in, greet, time_machine):
    time_machine.move_to(datetime(2025, 3, 27, 12, tzinfo=zone("Europe/Berlin")), tick=False)
    response = signed_in.post(reverse("scheduler-recurring-new"), {
        "workflow": "greet", "frequency_kind": "daily", "timezone": "Europe/Berlin", "start": "2025-03-28T02:30",
        "params": '{"name": "nightly"}', "missed": "catch_up", "overlap": "skip",
    })
    event = RecurringEvent.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("scheduler-recurring-edit", args=[event.id])
    html = signed_in.get(response["Location"]).content.decode()
    assert "Next fire: 2025-03-28 02:30:00 CET" in html
    for fire in ("Fri 2025-03-28 02:30:00 CET", "Sun 2025-03-30 03:30:00 CEST", "Tue 2025-04-01 02:30:00 CEST"):
        assert fire in html
    listing = signed_in.get(reverse("scheduler-recurring")).content.decode()
    assert "greet" in listing and "Europe/Berlin" in listing and "2025-03-28 02:30:00 CET" in listing


@pytest.mark.parametrize("data, field, message", [
    ({"frequency_kind": "cron", "cron": "every night"}, "cron", "five fields"),
    ({"frequency_kind": "minutes"}, "every", "Say how many"),
    ({"frequency_kind": "daily", "start": "tomorrow"}, "start", "Enter a date and time"),
    ({"frequency_kind": "daily", "params": "[1, 2]"}, "params", "JSON object"),
    ({"frequency_kind": "daily", "start": "2030-01-02T00:00", "end": "2030-01-01T00:00"}, "end", "after start"),
    ({"frequency_kind": "daily", "params": '{"name": ["a"]}'}, "params", "name:"),
])
def test_the_form_shows_field_errors_and_never_a_500(signed_in, greet, data, field, message):
    response = signed_in.post(reverse("scheduler-recurring-new"), {
        "workflow": "greet", "timezone": "UTC", "missed": "catch_up", "overlap": "skip", **data,
    })
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="id_{field}-error"' in html and message in html
    assert not RecurringEvent.objects.exists()


def test_edit_pause_resume_and_delete(signed_in, greet):
    event = recurring_event_create(workflow=greet, frequency="daily", start=soon(2), params={"name": "a"})
    url = reverse("scheduler-recurring-edit", args=[event.id])
    form = signed_in.get(url).content.decode()
    assert 'value="daily" selected' in form
    response = signed_in.post(url, {"workflow": "greet", "frequency_kind": "hours", "every": "6", "timezone": "UTC",
                                     "start": event.anchor[:16], "params": '{"name": "b"}', "missed": "skip",
                                     "overlap": "allow"})
    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.frequency, event.params, event.missed) == ({"every": 6, "unit": "hours"}, {"name": "b"}, "skip")
    change = reverse("scheduler-recurring-change", args=[event.id])
    signed_in.post(change, {"action": "pause"})
    event.refresh_from_db()
    assert not event.enabled and not event.periodic_task.enabled
    assert "Paused: no fires" in signed_in.get(url).content.decode()
    signed_in.post(change, {"action": "resume"})
    event.refresh_from_db()
    assert event.enabled
    signed_in.post(change, {"action": "delete"})
    assert not RecurringEvent.objects.exists()
    assert signed_in.get(url).status_code == 404


def test_batches_show_progress_and_refresh_while_running(signed_in, greet):
    batch_create(workflow=greet, items=["a", "b"], item_param="name", interval_seconds=60)
    html = signed_in.get(reverse("scheduler-batches")).content.decode()
    assert '<progress value="0" max="2"' in html and 'hx-trigger="every 2s"' in html
    partial = signed_in.get(reverse("scheduler-batches-progress")).content.decode()
    assert partial.lstrip().startswith("{#") is False and 'id="batches"' in partial and "<html" not in partial


def test_a_finished_batch_stops_refreshing(signed_in, greet):
    batch = batch_create(workflow=greet, items=["a"], item_param="name")
    signed_in.post(reverse("scheduler-batch-cancel", args=[batch.id]))
    from scheduler.services import batches_recount

    batches_recount()
    html = signed_in.get(reverse("scheduler-batches")).content.decode()
    assert "hx-trigger" not in html and "100%" in html and "finished" in html


def test_paused_runs_stay_listed_so_they_can_be_resumed_and_dispatched_ones_are_a_filter_away(signed_in, greet):
    paused = scheduled_run_create(workflow=greet, params={"name": "held"}, due_at=soon())
    signed_in.post(reverse("scheduler-scheduled-change"), {"id": paused.id, "action": "pause"})
    html = signed_in.get(reverse("scheduler-page")).content.decode()
    assert "held" in html and 'value="resume"' in html
    assert "held" not in signed_in.get(reverse("scheduler-page"), {"status": "dispatched"}).content.decode()


@pytest.mark.django_db
def test_a_viewer_sees_the_scheduler_but_cannot_change_it(client, django_user_model):
    from django.contrib.auth.models import Group

    viewer = django_user_model.objects.create_user("vera", password="pw-123456789")
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client.force_login(viewer)
    assert client.get("/scheduler/").status_code == 200
    assert client.post("/scheduler/recurring/new/", {}).status_code == 403
