"""The logs pages in a real browser: find a failed webhook run, read its waterfall, re-run it; the dashboard's charts."""
import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from logs.models import WorkflowRun
from tests.logs.conftest import MISSING_INVOICE, SET_VALUES, start_run  # noqa: F401  (fixture)
from tests.workflows.conftest import invoices, make_workflow  # noqa: F401  (fixtures)
from workflows.engine import run_execute

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("ENGINE_ROOM_SCREENSHOTS")


@pytest.fixture
def editor(user):
    user.groups.add(Group.objects.get_or_create(name="editor")[0])
    return user


@pytest.fixture(autouse=True)
def _dashboard_uncached(settings):
    settings.LOG_DASHBOARD_CACHE_SECONDS = 0


@pytest.fixture
def failing_billing(make_workflow, invoices, start_run):  # noqa: F811
    """billing fails when amount > 10 (no such invoice); reports fails always; a mix of triggers."""
    params = [{"name": "amount", "type": "number"}]
    charge = {**MISSING_INVOICE, "only_when": "{{ params.amount > 10 }}"}
    billing = make_workflow("billing", parameters=params, steps=[SET_VALUES, charge])
    reports = make_workflow("reports", parameters=params, steps=[MISSING_INVOICE])
    runs = {
        "hook_fail_1": start_run(billing, {"amount": 20}),
        "hook_fail_2": start_run(billing, {"amount": 30}),
        "hook_ok": start_run(billing, {"amount": 5}),
        "manual_fail": start_run(billing, {"amount": 40}, trigger="manual"),
        "other_fail": start_run(reports, {"amount": 50}),
    }
    assert [run.status for run in runs.values()] == ["failed", "failed", "succeeded", "failed", "failed"]
    return runs


def test_find_a_failed_webhook_run_read_its_waterfall_and_rerun_it(page, editor, failing_billing):
    from tests.browser.conftest import log_in

    log_in(page, editor.username)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Logs", exact=True).click()
    page.get_by_label("Workflow", exact=True).select_option("billing")
    page.get_by_label("Status", exact=True).select_option("failed")
    page.get_by_label("Trigger", exact=True).select_option("webhook")
    page.get_by_role("button", name="Filter", exact=True).click()

    runs = page.locator("#runs tbody tr")
    expect(runs).to_have_count(2)
    for row in runs.all():
        expect(row).to_contain_text("billing")
        expect(row).to_contain_text("failed")
        expect(row).to_contain_text("webhook")
    newest = failing_billing["hook_fail_2"]
    expect(runs.first).to_contain_text(str(newest.id)[:8])

    runs.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/logs/runs/{newest.id}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("billing")
    expect(page.get_by_role("heading", name=re.compile("^Error"))).to_be_visible()
    expect(page.locator(".run-error")).to_contain_text("Step 2 'charge' (delete_record) failed: No invoice record")
    bars = page.locator(".waterfall-row")
    expect(bars).to_have_count(2)
    expect(bars.nth(1)).to_contain_text("2. charge")
    # Every bar has a real width on the run's scale, and the two steps do not overlap.
    boxes = [bar.locator(".waterfall-bar").bounding_box() for bar in bars.all()]
    assert all(box["width"] > 0 for box in boxes)
    assert boxes[1]["x"] >= boxes[0]["x"] + boxes[0]["width"] - 1
    bars.nth(1).get_by_text("Details of step 2").click()
    expect(bars.nth(1).locator(".step-details")).to_contain_text("No invoice record")

    # Keyboard only: focus the button and press Enter.
    rerun = page.get_by_role("button", name="Re-run with the same parameters")
    rerun.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Re-run queued with the same parameters")
    new = WorkflowRun.objects.exclude(id__in=[run.id for run in failing_billing.values()]).get()
    assert (new.status, new.trigger, new.params) == ("queued", "manual", {"amount": 30})
    expect(page).to_have_url(re.compile(rf"/logs/runs/{new.id}/$"))
    expect(page.locator(".run-status-line .status-badge")).to_have_text("queued")

    # A worker picks it up; the page, polling while the run is in flight, shows the outcome by itself.
    run_execute(new.id)
    expect(page.locator(".run-status-line .status-badge")).to_have_text("failed", timeout=10_000)
    expect(page.locator(".waterfall-row")).to_have_count(2)


def test_the_dashboard_draws_its_charts_from_real_runs(logged_in_page, failing_billing):
    page = logged_in_page
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page.locator("#kpi-runs")).to_have_text("5")
    expect(page.locator("#kpi-failure-rate")).to_have_text("80.0%")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-wu')")

    hours = page.evaluate("""() => Object.fromEntries(Chart.getChart('chart-hours').data.datasets
        .map(d => [d.label, d.data.reduce((a, b) => a + b, 0)]))""")
    assert hours == {"succeeded": 1, "failed": 4}
    durations = page.evaluate("() => Chart.getChart('chart-durations').data.labels")
    assert sorted(durations) == ["billing", "reports"]
    wu = page.evaluate("""() => Object.fromEntries(Chart.getChart('chart-wu').data.datasets
        .map(d => [d.label, d.data[d.data.length - 1]]))""")
    expected_wu = {name: sum(run.wu for run in failing_billing.values() if run.workflow_name == name)
                   for name in ("billing", "reports")}
    assert wu == pytest.approx(expected_wu)
    for canvas in ("chart-hours", "chart-days", "chart-durations", "chart-wu"):
        painted = page.evaluate("""(id) => { const c = document.getElementById(id);
            const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) n++; return n; }""", canvas)
        assert painted > 500, canvas


def test_the_run_list_refreshes_itself_while_runs_are_in_flight(logged_in_page, make_workflow, start_run):  # noqa: F811
    page = logged_in_page
    run = start_run(make_workflow("reports", steps=[SET_VALUES]), execute=False)
    page.goto("/logs/")
    badge = page.locator("#runs tbody tr").first.locator(".status-badge")
    expect(badge).to_have_text("queued")
    run_execute(run.id)
    expect(badge).to_have_text("succeeded", timeout=10_000)
    expect(page.locator("#runs")).not_to_have_attribute("hx-trigger", "every 3s")


def test_viewers_get_no_buttons(logged_in_page, user, failing_billing):
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    page = logged_in_page
    page.goto(f"/logs/runs/{failing_billing['hook_fail_1'].id}/")
    expect(page.locator(".run-error")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Re-run|Cancel"))).to_have_count(0)


def test_logs_pages_fit_wide_and_narrow_screens_screenshots(logged_in_page, failing_billing):
    """Each page: labelled controls, no sideways scrolling at 375 px; screenshots when ENGINE_ROOM_SCREENSHOTS is set."""
    page = logged_in_page
    run = failing_billing["hook_fail_1"]
    pages = {"dashboard": "/", "run-list": "/logs/?workflow=billing", "run-detail": f"/logs/runs/{run.id}/",
             "events": "/logs/events/?events=workflow_error&events=condition_failed"}
    for width, height in ((1280, 800), (375, 740)):
        page.set_viewport_size({"width": width, "height": height})
        for name, url in pages.items():
            page.goto(url)
            if name == "dashboard":
                page.wait_for_function("() => window.Chart && Chart.getChart('chart-wu')")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} at {width}px"
            unlabelled = page.evaluate("""() => [...document.querySelectorAll('main input:not([type=hidden]), main select')]
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.name)""")
            assert unlabelled == [], f"{name}: {unlabelled}"
            if SCREENSHOTS:
                Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=f"{SCREENSHOTS}/logs-{name}-{width}.png", full_page=True)
