"""The editor in a real browser: build the Stripe payment workflow from nothing, test it, publish it, call it."""
import re

import pytest
import requests
from django.contrib.auth.models import Group
from django.core import mail
from playwright.sync_api import expect

from datastore.models import Record
from logs.models import WorkflowRun
from tests.browser.conftest import PASSWORD, log_in
from workflows.engine import run_execute
from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs and htmx round trips share two cores with other test sessions: wait generously, never sleep.
SLOW = 30_000


@pytest.fixture
def admin_user(transactional_db, django_user_model):
    """A new person with the admin role (API tokens need it), who has built nothing yet."""
    user = django_user_model.objects.create_user(username="grace", password=PASSWORD, first_name="Grace")
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    return user


def drag(page, handle, target) -> None:
    """Drag by a step's handle onto the top of another card, the way a mouse does (Sortable's fallback)."""
    target.evaluate("element => { element.scrollIntoView({block: 'start'}); window.scrollBy(0, -120); }")
    source_box, target_box = handle.bounding_box(), target.bounding_box()
    x, y = source_box["x"] + source_box["width"] / 2, source_box["y"] + source_box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y - 10, steps=3)
    page.mouse.move(x, target_box["y"] + 12, steps=25)
    page.mouse.up()


def expect_values(locator, values: list[str]) -> None:
    """The inputs matched, in page order, hold these values."""
    expect(locator).to_have_count(len(values))
    for index, value in enumerate(values):
        expect(locator.nth(index)).to_have_value(value)


def step_card(page, title: str):
    return page.locator("#step-list > li.step").filter(has=page.get_by_role("heading", name=re.compile(title)))


def add_step(page, label: str, key: str):
    """Add a step from the catalogue and give it a key; returns its card."""
    catalogue = page.locator("#catalogue")
    if catalogue.get_attribute("open") is None:
        catalogue.locator("summary").click()
    page.get_by_role("button", name=re.compile(f"^{label}")).click()
    card = step_card(page, label).last
    expect(card).to_be_visible()
    card.get_by_label("Key").fill(key)
    return card


def test_build_test_publish_and_call_the_stripe_workflow(page, live_server, admin_user):
    """A new admin builds the Stripe payment workflow only through the pages, then calls it over HTTP."""
    log_in(page, "grace")

    # The data it works on: a data type with two fields and one record.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Data", exact=True).click()
    page.get_by_label("Name").fill("subscription")
    page.get_by_role("button", name="Create and add fields").click()
    expect(page.get_by_role("heading", name="Fields of subscription")).to_be_visible()
    for name in ("customer_id", "status"):
        page.get_by_role("button", name="Add field").click()
        page.locator("#field-rows .field-row").last.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Save fields").click()
    page.get_by_role("button", name="New record").click()
    page.get_by_label("customer_id").fill("cus_1")
    page.get_by_label("status").fill("past_due")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("table.records")).to_contain_text("past_due")

    # An API token, shown once.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings", exact=True).click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("Stripe")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#token-value").inner_text()
    assert re.fullmatch(r"er_[a-z0-9]{8}_[A-Za-z0-9_-]{32}", token)

    # The workflow.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows", exact=True).click()
    # With no workflows yet, the form for the first one is open.
    page.get_by_label("Name").fill("process_stripe_payment")
    page.get_by_label("Description").fill("Activate the subscription when Stripe says an invoice was paid")
    page.get_by_role("button", name="Create and open").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("process_stripe_payment")

    rows = page.locator("#param-list .param-row")
    for count, name in enumerate(("type", "customer"), start=1):
        page.get_by_role("button", name="Add parameter").click()
        expect(rows).to_have_count(count)
        row = rows.last
        row.get_by_label("Name").fill(name)
        row.get_by_label("Required").check()

    find = add_step(page, "Find records", "find")
    find.get_by_role("combobox", name="Type", exact=True).fill("subscription")
    find.get_by_text("More options").click()
    find.get_by_label("Filter: name").fill("customer_id")
    find.get_by_label("Filter: value").fill("{{ params.customer }}")
    find.get_by_role("textbox", name="Limit", exact=True).fill("1")

    notify = add_step(page, "Send an email", "notify")
    notify.get_by_role("textbox", name="To", exact=True).fill("sales@example.com")
    subject = notify.get_by_role("textbox", name="Subject", exact=True)
    subject.fill("Paid: {{ params.customer ")
    # Checked as it is typed: the error sits next to the field, and goes once the field is fixed.
    subject_error = notify.locator("[id$='-c-subject-error']")
    expect(subject_error).to_contain_text("unexpected end of template", timeout=SLOW)
    expect(subject).to_have_attribute("aria-invalid", "true")
    subject.fill("Paid: {{ params.customer }}")
    expect(subject_error).to_be_empty(timeout=SLOW)
    notify.get_by_role("textbox", name="Body", exact=True).fill("Subscription {{ steps.activate.id }} is active again.")

    activate = add_step(page, "Update a record", "activate")
    activate.get_by_role("combobox", name="Type", exact=True).fill("subscription")
    activate.get_by_role("textbox", name="ID", exact=True).fill("{{ steps.find.records[0].id }}")
    activate.get_by_label("Fields: name").fill("status")
    activate.get_by_label("Fields: value").fill("active")
    activate.get_by_role("textbox", name="Only when", exact=True).fill("{{ params.type == 'invoice.paid' and steps.find.count > 0 }}")

    # notify reads steps.activate, which comes after it: an error until the steps are reordered.
    body_error = notify.locator("[id$='-c-body-error']")
    expect(body_error).to_have_text("steps.activate is not an earlier step", timeout=SLOW)
    # Titles only, so both cards fit on the screen while dragging.
    page.get_by_role("button", name="Show only step titles").click()
    drag(page, activate.locator(".drag-handle"), notify)
    expect_values(page.locator("#step-list .key-input"), ["find", "activate", "notify"])
    page.get_by_role("button", name="Show whole steps").click()
    expect(body_error).to_be_empty(timeout=SLOW)
    expect(page.locator("#check-status")).to_have_text("No problems found", timeout=SLOW)
    expect(page.locator("#dirty-state")).to_have_text("Unsaved changes")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved. The draft is not live until you publish it.")).to_be_visible()
    saved = Workflow.objects.get(name="process_stripe_payment")
    assert [step["key"] for step in saved.definition["steps"]] == ["find", "activate", "notify"]

    # A dry test run: every step's result, the email captured instead of sent.
    test_panel = page.locator("#test-panel")
    test_panel.get_by_role("textbox", name=re.compile(r"^type")).fill("invoice.paid")
    test_panel.get_by_role("textbox", name=re.compile(r"^customer")).fill("cus_1")
    expect(test_panel.get_by_label("Dry run")).to_be_checked()
    page.get_by_role("button", name="Run test").click()
    panel = page.locator("#run-result .run-panel")
    expect(panel).to_have_attribute("data-status", "succeeded", timeout=SLOW)
    results = panel.locator(".step-result")
    expect(results).to_have_count(3)
    for key in ("find", "activate", "notify"):
        expect(results.filter(has_text=key).locator(".status")).to_have_text("succeeded")
    expect(panel).to_contain_text("Captured, not sent:")
    expect(panel).to_contain_text("Email to sales@example.com: “Paid: cus_1”")
    assert mail.outbox == []

    # Publish, then call the live URL as Stripe's relay would.
    page.get_by_role("button", name="Save and publish").click()
    expect(page.get_by_text("Saved and published: version 1 is live.")).to_be_visible()
    expect(page.locator("#versions-panel")).to_contain_text("Version 1")
    Record.objects.filter(data__customer_id="cus_1").update(data={"customer_id": "cus_1", "status": "past_due"})
    response = requests.post(
        f"{live_server.url}/api/wf/process_stripe_payment",
        json={"type": "invoice.paid", "customer": "cus_1"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    run_execute(run_id)  # the worker's part
    assert Record.objects.get(data__customer_id="cus_1").data["status"] == "active"
    assert [message.subject for message in mail.outbox] == ["Paid: cus_1"]

    # The run is in the logs.
    page.get_by_role("link", name="All runs of process_stripe_payment in Logs").click()
    run_link = page.get_by_role("link", name=re.compile(f"Run {run_id[:8]} of process_stripe_payment, succeeded"))
    expect(run_link).to_be_visible(timeout=SLOW)
    run_link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("process_stripe_payment")
    for key in ("find", "activate", "notify"):
        expect(page.locator(".waterfall")).to_contain_text(key)
    assert WorkflowRun.objects.get(id=run_id).trigger == "webhook"


@pytest.fixture
def two_steps(transactional_db, user):
    from workflows.services import workflow_create

    return workflow_create(definition={
        "format": 1, "name": "two_steps",
        "steps": [{"key": "first", "action": "set_values", "config": {"values": {"a": 1}}},
                  {"key": "second", "action": "terminate", "config": {}}],
    })


def test_keyboard_reorders_steps_and_unsaved_changes_are_not_lost(logged_in_page, two_steps):
    """Move down by keyboard; leaving with unsaved changes asks first; saving keeps the new order."""
    page = logged_in_page
    page.goto("/workflows/two_steps/")
    first = step_card(page, "Set values")
    move_down = first.get_by_role("button", name="Move step down")
    move_down.focus()
    page.keyboard.press("Enter")
    expect_values(page.locator("#step-list .key-input"), ["second", "first"])
    expect(move_down).to_be_focused()
    expect(page.locator("#editor-announce")).to_contain_text("moved to position 2 of 2")

    dialogs = []

    def stay(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Data", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("two_steps")
    assert dialogs == ["beforeunload"]
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    two_steps.refresh_from_db()
    assert [step["key"] for step in two_steps.definition["steps"]] == ["second", "first"]


def test_a_viewer_sees_the_workflow_but_cannot_change_it(page, live_server, two_steps, django_user_model):
    """Controls are hidden or disabled for a viewer, and the server refuses a save with 403."""
    viewer = django_user_model.objects.create_user(username="vic", password=PASSWORD)
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    log_in(page, "vic")
    page.goto("/workflows/")
    expect(page.get_by_role("link", name="two_steps", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="New workflow")).to_have_count(0)
    expect(page.get_by_role("switch", name="two_steps enabled")).to_be_disabled()
    page.get_by_role("link", name="two_steps", exact=True).click()
    expect(page.locator("#viewer-note")).to_be_visible()
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Run test")).to_have_count(0)
    expect(page.get_by_role("button", name="Move step up")).to_have_count(0)
    expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    token = page.evaluate("document.querySelector('[name=csrfmiddlewaretoken]').value")
    response = page.request.post(
        f"{live_server.url}/workflows/two_steps/",
        form={"csrfmiddlewaretoken": token, "name": "renamed", "revision": "1", "format": "1"},
        headers={"Referer": f"{live_server.url}/workflows/two_steps/"},
    )
    assert response.status == 403
    assert Workflow.objects.filter(name="two_steps", revision=1).exists()


def test_detect_data_proposes_parameters_from_a_real_request(page, live_server, admin_user, two_steps):
    """Detect data waits for one request to the initialize URL, then adds the parameters it suggests."""
    from api_endpoints.services import token_create

    log_in(page, "grace")
    page.goto("/workflows/two_steps/")
    page.get_by_role("button", name="Detect data").click()
    expect(page.locator("#detect")).to_contain_text("Waiting for a request")
    token = token_create(name="setup").value
    response = requests.post(f"{live_server.url}/api/wf/two_steps/initialize",
                             json={"amount": 12.5, "email": "a@example.com", "tags": ["x"]},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    expect(page.locator("#detect")).to_contain_text("Request received", timeout=SLOW)
    page.get_by_role("button", name="Use these parameters").click()
    expect_values(page.locator("#param-list .param-row input[name$='-name']"), ["amount", "email", "tags"])
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    two_steps.refresh_from_db()
    assert two_steps.definition["parameters"] == [
        {"name": "amount", "type": "number", "list": False, "required": False},
        {"name": "email", "type": "email", "list": False, "required": False},
        {"name": "tags", "type": "text", "list": True, "required": False},
    ]


def test_the_editor_fits_a_narrow_screen(logged_in_page, two_steps):
    """On a phone-sized screen the editor is one column with no sideways scrolling, and still saves."""
    page = logged_in_page
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto("/workflows/two_steps/")
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.get_by_role("heading", name="Test run")).to_be_visible()
