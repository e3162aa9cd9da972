"""The run list: filters, newest first with keyset pages, counts per status, live refresh, access."""
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from logs.models import WorkflowRun
from logs.selectors import RunFilters, run_page

from .conftest import MISSING_INVOICE, SET_VALUES, age

pytestmark = pytest.mark.django_db

PARAMS = [{"name": "amount", "type": "number"}, {"name": "customer", "type": "text"}]


@pytest.fixture
def two_workflows(make_workflow, invoices):
    billing = make_workflow("billing", parameters=PARAMS, steps=[SET_VALUES, MISSING_INVOICE])
    reports = make_workflow("reports", parameters=PARAMS, steps=[SET_VALUES])
    return billing, reports


def run_ids(html: str) -> list[str]:
    """Run ids linked from the table, in page order."""
    return re.findall(r'href="/logs/runs/([0-9a-f-]{36})/"', html.split('id="runs"', 1)[1])


def test_filters_narrow_the_list_to_failed_webhook_runs_of_one_workflow(editor_client, two_workflows, start_run):
    billing, reports = two_workflows
    failed_hook = start_run(billing, {"amount": 5, "customer": "acme"})
    start_run(billing, {"amount": 6}, trigger="manual")  # failed too, but not a webhook
    start_run(reports, {"amount": 7})  # a webhook, but succeeded and another workflow
    assert failed_hook.status == "failed"

    html = editor_client.get(reverse("logs-page"), {"workflow": "billing", "status": "failed",
                                                    "trigger": "webhook"}).content.decode()
    assert run_ids(html) == [str(failed_hook.id)]
    assert "Step 2 &#x27;charge&#x27; (delete_record) failed" in html


def test_version_time_range_and_text_search(editor_client, two_workflows, start_run, make_workflow):
    from workflows.services import workflow_publish

    billing, _ = two_workflows
    old = age(start_run(billing, {"amount": 1, "customer": "globex"}), days=3)
    workflow_publish(workflow=billing)  # v2
    new = start_run(billing, {"amount": 2, "customer": "initech"})

    def ids(**query):
        return run_ids(editor_client.get(reverse("logs-page"), query).content.decode())

    assert ids(workflow="billing", version="1") == [str(old.id)]
    assert ids(workflow="billing", version="2") == [str(new.id)]
    assert ids(period="24h") == [str(new.id)]
    since = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    until = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert ids(since=since, until=until) == [str(old.id)]
    # Search finds text in the parameters, in the error, and a pasted run id.
    assert ids(q="GLOBEX") == [str(old.id)]
    assert set(ids(q="no invoice record")) == {str(old.id), str(new.id)}
    assert ids(q=str(new.id)) == [str(new.id)]


def test_a_bad_filter_value_is_reported_and_the_rest_still_apply(editor_client, two_workflows, start_run):
    billing, reports = two_workflows
    start_run(billing, {"amount": 1})
    kept = start_run(reports, {"amount": 1})
    response = editor_client.get(reverse("logs-page"), {"workflow": "reports", "version": "latest"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "A version number, or “draft”." in html
    assert run_ids(html) == [str(kept.id)]


def test_newest_first_in_pages_that_neither_skip_nor_repeat(two_workflows, start_run):
    _, reports = two_workflows
    runs = [start_run(reports, {"amount": i}, execute=False) for i in range(7)]
    # Two runs in the very same microsecond: the id breaks the tie.
    WorkflowRun.objects.filter(id=runs[3].id).update(created=runs[2].created)
    expected = [run.id for run in WorkflowRun.objects.order_by("-created", "-id")]

    seen, page = [], run_page(filters=RunFilters(), size=3)
    seen += [run.id for run in page.runs]
    while page.older:
        page = run_page(filters=RunFilters(), before=page.older, size=3)
        seen += [run.id for run in page.runs]
    assert seen == expected
    back = run_page(filters=RunFilters(), after=page.newer, size=3)
    assert [run.id for run in back.runs] == expected[3:6]


def test_older_and_newer_links_keep_the_filters(editor_client, two_workflows, start_run, monkeypatch):
    monkeypatch.setattr("logs.selectors.PAGE_SIZE", 2)
    _, reports = two_workflows
    for i in range(5):
        start_run(reports, {"amount": i}, execute=False)
    html = editor_client.get(reverse("logs-page"), {"workflow": "reports"}).content.decode()
    older = re.search(r'href="\?([^"]*before=[^"]*)">Older', html).group(1).replace("&amp;", "&")
    assert "workflow=reports" in older
    second = editor_client.get(f"{reverse('logs-page')}?{older}").content.decode()
    assert len(run_ids(second)) == 2
    assert "← Newer" in second


def test_counts_per_status_follow_the_other_filters(editor_client, two_workflows, start_run):
    billing, reports = two_workflows
    for _ in range(3):
        start_run(billing, {"amount": 1})
    start_run(billing, {"amount": 1}, execute=False)
    start_run(reports, {"amount": 1})
    html = editor_client.get(reverse("logs-page"), {"workflow": "billing", "status": "failed"}).content.decode()
    chips = dict(re.findall(r'class="status-chip status-(\w+)".*?<strong>([\d,+]+)</strong>', html))
    # The status chips count every status within the other filters, so one click switches between them.
    assert chips["failed"] == "3" and chips["queued"] == "1" and chips["succeeded"] == "0"
    assert "3 matching" in html


def test_the_list_refreshes_itself_only_while_runs_are_in_flight(editor_client, two_workflows, start_run):
    _, reports = two_workflows
    queued = start_run(reports, {"amount": 1}, execute=False)
    html = editor_client.get(reverse("logs-page")).content.decode()
    assert 'hx-trigger="every 3s"' in html
    partial = editor_client.get(reverse("logs-run-rows")).content.decode()
    assert 'id="runs"' in partial and "<html" not in partial  # the table alone, for htmx to swap in

    # A list of failed runs does not poll for a queued run it cannot show.
    assert 'hx-trigger="every 3s"' not in editor_client.get(reverse("logs-page"), {"status": "failed"}).content.decode()

    from workflows.engine import run_execute

    run_execute(queued.id)
    assert 'hx-trigger="every 3s"' not in editor_client.get(reverse("logs-run-rows")).content.decode()


def test_a_failed_run_links_to_its_on_failure_run_and_back(editor_client, make_workflow, invoices, start_run):
    make_workflow("alert_team", parameters=[], steps=[{"key": "note", "action": "set_values",
                                                       "config": {"values": {"seen": "{{ params.failed_run_id }}"}}}])
    failing = make_workflow("nightly", steps=[MISSING_INVOICE], on_failure="alert_team")
    failed = start_run(failing, trigger="schedule")
    failure_run = WorkflowRun.objects.get(workflow_name="alert_team")
    assert failure_run.parent_run_id == failed.id

    html = editor_client.get(reverse("logs-page")).content.decode()
    assert f'on_failure → <a href="/logs/runs/{failure_run.id}/">alert_team' in html
    assert f'on_failure of <a href="/logs/runs/{failed.id}/">' in html


def test_everyone_signed_in_reads_and_nobody_else(client, viewer_client, two_workflows, start_run):
    _, reports = two_workflows
    run = start_run(reports, {"amount": 1})
    assert viewer_client.get(reverse("logs-page")).status_code == 200
    assert viewer_client.get(reverse("logs-run", args=[run.id])).status_code == 200
    client.logout()
    for url in (reverse("logs-page"), reverse("logs-run", args=[run.id]), reverse("logs-export", args=["csv"]),
                reverse("home"), reverse("logs-metrics"), reverse("logs-events")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
