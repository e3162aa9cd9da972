"""A workflow from a template, through the pages only: install it, test-run it, publish it."""
import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from datastore.models import DataType
from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs and htmx round trips share two cores with other work: wait generously, never sleep.
SLOW = 30_000
TITLE = "Asynchronous export (CSV and PDF)"


def test_a_template_becomes_a_tested_and_published_workflow(logged_in_page):
    page = logged_in_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows", exact=True).click()
    page.get_by_role("button", name="From a template").click()
    page.get_by_role("button", name=f"Use the template {TITLE}").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("export_orders")
    expect(page.get_by_text("Template installed as drafts: export_orders.")).to_be_visible()
    assert DataType.objects.filter(name="order").exists()

    # A dry test run: the files are made, the email with both attachments is shown, not sent.
    test_panel = page.locator("#test-panel")
    test_panel.get_by_role("textbox", name=re.compile(r"^email")).fill("ada@example.com")
    expect(test_panel.get_by_label("Dry run")).to_be_checked()
    page.get_by_role("button", name="Run test").click()
    panel = page.locator("#run-result .run-panel")
    expect(panel).to_have_attribute("data-status", "succeeded", timeout=SLOW)
    results = panel.locator(".step-result")
    expect(results).to_have_count(4)
    for key in ("orders", "csv", "pdf", "email"):
        expect(results.filter(has_text=key).first.locator(".status")).to_have_text("succeeded")
    expect(panel).to_contain_text("Captured, not sent:")
    assert mail.outbox == []

    page.get_by_role("button", name="Save and publish").click()
    expect(page.get_by_text("Saved and published: version 1 is live.")).to_be_visible(timeout=SLOW)
    assert Workflow.objects.get(name="export_orders").live_version.number == 1


def test_a_template_whose_workflow_exists_says_so_and_changes_nothing(logged_in_page):
    page = logged_in_page
    page.goto("/workflows/")
    page.get_by_role("button", name="From a template").click()
    page.get_by_role("button", name=f"Use the template {TITLE}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("export_orders")
    page.goto("/workflows/")
    page.get_by_role("button", name="From a template").click()
    page.get_by_role("button", name=f"Use the template {TITLE}").click()
    expect(page.get_by_text(re.compile("export_orders exist already"))).to_be_visible()
    assert Workflow.objects.filter(name="export_orders").count() == 1
