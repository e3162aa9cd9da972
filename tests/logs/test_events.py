"""Bubble-style events, derived from runs and steps: one run's timeline and the stream across runs."""
import re

import pytest
from django.urls import reverse
from werkzeug import Response

from logs.events import StreamFilters, event_stream, run_events
from logs.models import StepRun
from logs.selectors import run_definition

from .conftest import MISSING_INVOICE, SET_VALUES, age

pytestmark = pytest.mark.django_db


@pytest.fixture
def signup(make_workflow, httpserver, smtp_server, invoices):
    """A workflow with a condition that passes, one that fails, an HTTP call and an email that bounces."""
    httpserver.expect_request("/crm").respond_with_response(Response('{"id": 7}', status=201,
                                                                     content_type="application/json"))
    return make_workflow("signup", parameters=[{"name": "plan", "type": "text"}], only_when="{{ params.plan != 'spam' }}",
                         steps=[
        {"key": "crm", "action": "http_request", "only_when": "{{ params.plan == 'pro' }}",
         "config": {"method": "POST", "url": httpserver.url_for("/crm"), "json": {"plan": "{{ params.plan }}"}}},
        {"key": "vip", "action": "set_values", "only_when": "{{ params.plan == 'vip' }}", "config": {"values": {"a": 1}}},
        {"key": "welcome", "action": "send_email", "on_error": "continue",
         "config": {"to": "reject@example.com", "subject": "Hi", "body": "Welcome"}},
    ])


def test_one_run_tells_its_story_in_events(signup, start_run):
    run = start_run(signup, {"plan": "pro"})
    steps = list(StepRun.objects.filter(run=run).order_by("index", "attempt"))
    events = run_events(run=run, steps=steps, definition=run_definition(run))
    lines = [(event.type, event.step_key) for event in events]

    assert lines[0] == ("workflow_started", "")
    assert ("condition_passed", "") in lines  # the workflow's own only_when
    assert lines.index(("condition_passed", "crm")) < lines.index(("http_request", "crm")) < lines.index(
        ("http_response", "crm")) < lines.index(("action_finished", "crm"))
    assert ("condition_failed", "vip") in lines and ("action_started", "vip") not in lines
    assert ("email_failed", "welcome") in lines
    assert lines[-1] == ("workflow_finished", "")
    messages = {event.type: event.message for event in events}
    assert messages["http_request"].startswith("POST http://")
    assert messages["http_response"].startswith("201 from POST")
    assert "reject@example.com" in messages["email_failed"] or "550" in messages["email_failed"]


def test_a_run_skipped_by_its_condition_is_a_failed_condition(signup, start_run):
    run = start_run(signup, {"plan": "spam"})
    events = run_events(run=run, steps=[], definition=run_definition(run))
    assert run.status == "skipped"
    assert [event.type for event in events] == ["workflow_started", "condition_failed", "workflow_finished"]


def test_the_run_page_filters_its_events(editor_client, signup, start_run):
    run = start_run(signup, {"plan": "pro"})
    html = editor_client.get(reverse("logs-run", args=[run.id]), {"events": ["http_request", "http_response"]}).content.decode()
    shown = re.findall(r'class="event-badge event-badge-(\w+)"', html)
    assert shown == ["http_request", "http_response"]


def test_the_stream_shows_chosen_event_types_across_runs_newest_first(signup, start_run, make_workflow, invoices):
    older = age(start_run(signup, {"plan": "pro"}), hours=2)
    newer = start_run(signup, {"plan": "basic"})
    broken = start_run(make_workflow("broken", steps=[SET_VALUES, MISSING_INVOICE]))

    errors, _ = event_stream(filters=StreamFilters(types=("workflow_error",)))
    assert [(event.workflow, event.run_id) for event in errors] == [("broken", broken.id)]

    emails, _ = event_stream(filters=StreamFilters(types=("email_failed",), workflow="signup"))
    assert [event.run_id for event in emails] == [newer.id, older.id]

    calls, _ = event_stream(filters=StreamFilters(types=("http_request", "http_response")))
    assert [(event.type, event.run_id) for event in calls] == [("http_response", older.id), ("http_request", older.id)]

    passed, _ = event_stream(filters=StreamFilters(types=("condition_passed",)))
    assert {(event.run_id, event.step_key) for event in passed} == {
        (older.id, ""), (older.id, "crm"), (newer.id, "")}


def test_the_stream_pages_without_skipping_or_repeating(signup, start_run):
    runs = [age(start_run(signup, {"plan": "basic"}), hours=index) for index in range(5)]
    filters = StreamFilters(types=("workflow_started",))
    seen, before = [], None
    while True:
        page, before = event_stream(filters=StreamFilters(types=filters.types, before=before), limit=2)
        seen += [event.run_id for event in page]
        if before is None:
            break
    assert seen == [run.id for run in runs]


def test_the_events_page_has_labelled_filters_and_links_to_runs(editor_client, signup, start_run):
    run = start_run(signup, {"plan": "pro"})
    html = editor_client.get(reverse("logs-events"), {"events": ["email_failed"], "workflow": "signup"}).content.decode()
    assert '<label for="event-workflow">Workflow</label>' in html and "<legend>Event types</legend>" in html
    assert re.findall(r'class="event-badge event-badge-(\w+)"', html) == ["email_failed"]
    assert f'href="/logs/runs/{run.id}/"' in html
