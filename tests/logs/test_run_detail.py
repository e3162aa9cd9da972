"""A run's page: facts, error, waterfall to scale, step details, run tree, cancel and re-run."""
import re
import time

import pytest
from django.test import Client
from django.urls import reverse
from werkzeug import Response

from logs.models import WorkflowRun
from logs.waterfall import waterfall

from .conftest import MISSING_INVOICE, SET_VALUES, make_person

pytestmark = pytest.mark.django_db

SKIPPED = {"key": "vip", "action": "set_values", "only_when": "{{ params.amount > 1000 }}",
           "config": {"values": {"vip": True}}}


@pytest.fixture
def slow_then_failing(make_workflow, invoices, httpserver):
    """prepare → a 300 ms HTTP call → a skipped step → a step that fails."""

    def slow(request):
        time.sleep(0.3)
        return Response('{"ok": true}', status=200, content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    call = {"key": "call", "action": "http_request", "config": {"method": "POST", "url": httpserver.url_for("/slow"),
                                                                "json": {"amount": "{{ params.amount }}"}}}
    return make_workflow("checkout", parameters=[{"name": "amount", "type": "number"}],
                         steps=[SET_VALUES, call, SKIPPED, MISSING_INVOICE])


def bar_widths(html: str) -> list[float]:
    return [float(width) for width in re.findall(r'class="waterfall-bar" style="margin-left: [\d.]+%; width: ([\d.]+)%"', html)]


def test_the_page_shows_what_started_the_run_its_error_and_the_bottleneck(editor_client, slow_then_failing, start_run):
    run = start_run(slow_then_failing, {"amount": 42}, caller="token:shop")
    html = editor_client.get(reverse("logs-run", args=[run.id])).content.decode()

    assert run.status == "failed"
    for fact in ("webhook", "token:shop", "v1", f"{run.wu:g}"):
        assert fact in html, fact
    assert "Step 4 &#x27;charge&#x27; (delete_record) failed: No invoice record" in html
    assert "only_when was false: {{ params.amount &gt; 1000 }}" in html
    assert "&quot;amount&quot;: 42" in html  # the parameters, and the call's rendered input
    assert "&quot;ok&quot;: true" in html  # the call's output
    # The HTTP call took most of the run: its bar is the widest and it is marked as the bottleneck.
    widths = bar_widths(html)
    assert len(widths) == 4
    assert widths[1] == max(widths) and widths[1] > 50
    assert re.search(r'waterfall-row status-succeeded slowest">\s*<div class="waterfall-label">\s*'
                     r'<span class="step-name">2\. call</span>', html)


def test_waterfall_bars_sit_on_the_run_time_scale(slow_then_failing, start_run):
    from logs.models import StepRun

    run = start_run(slow_then_failing, {"amount": 1})
    steps = list(StepRun.objects.filter(run=run).order_by("index"))
    bars = waterfall(run=run, steps=steps, now=run.finished_at)
    # Each bar starts after the one before it ends, and none runs past the end of the run.
    for before, after in zip(bars, bars[1:], strict=False):
        assert after.offset_pct >= before.offset_pct
    assert all(bar.offset_pct + bar.width_pct <= 100.0001 for bar in bars)
    call = bars[1]
    assert call.slowest and call.share_pct == pytest.approx(steps[1].duration_ms / run.duration_ms * 100, abs=0.1)
    assert bars[2].width_pct < 1 and not bars[2].slowest  # skipped: a sliver, never the bottleneck


def test_rerun_starts_a_new_manual_run_with_the_same_parameters(editor_client, make_workflow, invoices, start_run):
    workflow = make_workflow("billing", parameters=[{"name": "amount", "type": "number"}], steps=[MISSING_INVOICE])
    run = start_run(workflow, {"amount": 9})
    html = editor_client.get(reverse("logs-run", args=[run.id])).content.decode()
    assert "Re-run with the same parameters" in html and "Cancel run" not in html

    response = editor_client.post(reverse("logs-run-rerun", args=[run.id]))
    new = WorkflowRun.objects.exclude(id=run.id).get()
    assert response.status_code == 302 and response["Location"] == reverse("logs-run", args=[new.id])
    assert (new.status, new.trigger, new.params, new.caller) == ("queued", "manual", {"amount": 9}, "user:editor-person")
    page = editor_client.get(response["Location"]).content.decode()
    assert "Re-run queued with the same parameters" in page and "Cancel run" in page


def test_cancel_stops_a_queued_run(editor_client, make_workflow, start_run):
    workflow = make_workflow("reports", steps=[SET_VALUES])
    run = start_run(workflow, execute=False)
    html = editor_client.get(reverse("logs-run", args=[run.id])).content.decode()
    assert "Cancel run" in html and "Re-run" not in html
    assert 'hx-trigger="every 2s"' in html  # refreshes while it waits

    editor_client.post(reverse("logs-run-cancel", args=[run.id]))
    run.refresh_from_db()
    html = editor_client.get(reverse("logs-run", args=[run.id])).content.decode()
    assert run.status == "cancelled"
    assert "Run cancelled before it started." in html
    assert "Cancel run" not in html and 'hx-trigger="every 2s"' not in html


def test_viewers_see_no_buttons_and_cannot_post(viewer_client, make_workflow, start_run):
    workflow = make_workflow("reports", steps=[SET_VALUES])
    queued = start_run(workflow, execute=False)
    done = start_run(workflow)
    assert "Cancel run" not in viewer_client.get(reverse("logs-run", args=[queued.id])).content.decode()
    assert "Re-run" not in viewer_client.get(reverse("logs-run", args=[done.id])).content.decode()
    assert viewer_client.post(reverse("logs-run-cancel", args=[queued.id])).status_code == 403
    assert viewer_client.post(reverse("logs-run-rerun", args=[done.id])).status_code == 403
    queued.refresh_from_db()
    assert queued.status == "queued" and WorkflowRun.objects.count() == 2


def test_a_person_without_a_role_group_is_an_editor_as_everywhere_else(client, make_workflow, start_run):
    workflow = make_workflow("reports", steps=[SET_VALUES])
    done = start_run(workflow)
    client.force_login(make_person("none", "nobody"))
    assert "Re-run with the same parameters" in client.get(reverse("logs-run", args=[done.id])).content.decode()
    assert client.post(reverse("logs-run-rerun", args=[done.id])).status_code == 302
    assert WorkflowRun.objects.count() == 2


def test_actions_need_the_csrf_token(make_workflow, start_run):
    workflow = make_workflow("reports", steps=[SET_VALUES])
    run = start_run(workflow, execute=False)
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_person("editor"))
    assert client.post(reverse("logs-run-cancel", args=[run.id])).status_code == 403
    run.refresh_from_db()
    assert run.status == "queued"


def test_the_run_tree_shows_parent_root_and_children(editor_client, make_workflow, start_run):
    make_workflow("leaf", steps=[SET_VALUES])
    make_workflow("middle", steps=[{"key": "call", "action": "run_workflow", "config": {"workflow": "leaf", "params": {}}}])
    top = make_workflow("top", steps=[{"key": "call", "action": "run_workflow", "config": {"workflow": "middle", "params": {}}}])
    root = start_run(top)
    middle = WorkflowRun.objects.get(workflow_name="middle")
    leaf = WorkflowRun.objects.get(workflow_name="leaf")

    html = editor_client.get(reverse("logs-run", args=[leaf.id])).content.decode()
    assert f'Root: <a href="/logs/runs/{root.id}/">top' in html
    assert f'Parent: <a href="/logs/runs/{middle.id}/">middle' in html
    html = editor_client.get(reverse("logs-run", args=[root.id])).content.decode()
    assert f'<a href="/logs/runs/{middle.id}/">middle' in html and "depth 0" in html


def test_an_on_failure_run_and_its_failed_run_link_to_each_other(editor_client, make_workflow, invoices, start_run):
    make_workflow("alert_team", steps=[SET_VALUES])
    failed = start_run(make_workflow("nightly", steps=[MISSING_INVOICE], on_failure="alert_team"), trigger="recurring")
    handler = WorkflowRun.objects.get(workflow_name="alert_team")

    html = editor_client.get(reverse("logs-run", args=[failed.id])).content.decode()
    assert "its <code>on_failure</code> workflow ran:" in html and f"/logs/runs/{handler.id}/" in html
    html = editor_client.get(reverse("logs-run", args=[handler.id])).content.decode()
    assert "Started by the <code>on_failure</code> setting of" in html and f"/logs/runs/{failed.id}/" in html


def test_an_unknown_or_pruned_run_is_a_404(editor_client):
    response = editor_client.get(reverse("logs-run", args=["6f1c1f8e-0000-4000-8000-000000000000"]))
    assert response.status_code == 404
