"""The monthly WU budget: the 80% banner, and refusing new runs with a message once an enforced budget is used up."""
import json
from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone

from logs.budget import BudgetExceededError, check_wu_budget, forget_usage, month_bounds, wu_budget_status
from logs.context_processors import wu_budget
from logs.models import RunDailyStat, WorkflowRun

from .conftest import SET_VALUES, make_person

pytestmark = pytest.mark.django_db


@pytest.fixture
def spent(make_workflow, start_run, settings):
    """Runs worth exactly 2.5 WU this month, and 100 WU last month (which does not count)."""
    workflow = make_workflow("reports", steps=[SET_VALUES])
    runs = [start_run(workflow) for _ in range(2)]
    WorkflowRun.objects.filter(id=runs[0].id).update(wu=1.0)
    WorkflowRun.objects.filter(id=runs[1].id).update(wu=0.5)
    # Pruned earlier this month: its WU lives on in the daily aggregate.
    RunDailyStat.objects.create(day=month_bounds()[0].date(), workflow_name="reports", succeeded=3, wu=1.0)
    last_month = start_run(workflow)
    WorkflowRun.objects.filter(id=last_month.id).update(wu=100, created=month_bounds()[0] - timedelta(hours=1))
    RunDailyStat.objects.create(day=(month_bounds()[0] - timedelta(days=3)).date(), workflow_name="reports", wu=50)
    forget_usage()
    return workflow


def test_no_budget_means_no_status_and_no_refusal(spent, settings):
    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = None
    assert wu_budget_status() is None
    check_wu_budget()


def test_the_months_usage_counts_stored_and_pruned_runs_of_this_month_only(spent, settings):
    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 10
    status = wu_budget_status()
    assert status.used == pytest.approx(2.5)
    assert status.percent == 25 and not status.warning and not status.exceeded


def test_the_enforced_budget_refuses_new_runs_with_a_message_that_says_so(spent, settings):
    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 2.5
    settings.ENGINE_ROOM_WU_BUDGET_ENFORCE = True
    with pytest.raises(BudgetExceededError) as refused:
        check_wu_budget()
    error = refused.value
    assert str(error.code) == "budget_exceeded"
    assert "The monthly workload budget of 2.5 WU is used up (2.5 WU since" in error.message
    assert "new runs are refused until" in error.message
    assert error.extra["used"] == pytest.approx(2.5)
    _, resets = month_bounds()
    assert resets.strftime("%Y-%m-%d") in error.message


def test_an_unenforced_budget_only_warns(spent, settings):
    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 2
    check_wu_budget()  # not enforced: runs go on
    status = wu_budget_status()
    assert status.exceeded and "runs go on, because the budget is not enforced" in status.message


def test_the_count_is_remembered_briefly_so_the_hot_path_stays_cheap(spent, settings, django_assert_num_queries):
    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 100
    settings.ENGINE_ROOM_WU_BUDGET_ENFORCE = True
    with django_assert_num_queries(2):  # stored runs, aggregates
        check_wu_budget()
    with django_assert_num_queries(0):
        for _ in range(50):
            check_wu_budget()


def test_the_banner_shows_from_80_percent(spent, settings):
    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 3  # 2.5 of 3 = 83%
    request = RequestFactory().get("/")
    request.user = make_person("viewer")
    context = wu_budget(request)
    assert context["wu_budget"].percent == 83
    html = render_to_string("logs/_budget_banner.html", context, request=request)
    assert "Workload budget at 83%." in html and 'role="status"' in html
    assert "83% of the monthly workload budget is used (2.5 of 3 WU" in html

    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 4  # 62%: no banner
    forget_usage()
    assert wu_budget(request) == {}


def test_the_dashboard_shows_the_budget(editor_client, spent, settings):
    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 2
    settings.ENGINE_ROOM_WU_BUDGET_ENFORCE = True
    html = editor_client.get("/").content.decode()
    assert "125% of the 2 WU budget (enforced)" in html
    assert "new runs are refused until" in html


def test_the_webhook_answers_429_with_the_message_when_the_budget_is_used_up(spent, settings, client):
    from api_endpoints.services import token_create

    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 2
    settings.ENGINE_ROOM_WU_BUDGET_ENFORCE = True
    token = token_create(name="budget-test").value
    before = WorkflowRun.objects.count()
    response = client.post("/api/wf/reports", json.dumps({}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 429
    detail = response.json()["detail"]
    assert "The monthly workload budget of 2 WU is used up" in detail and "new runs are refused until" in detail
    assert WorkflowRun.objects.count() == before


def test_month_bounds_are_utc_calendar_months():
    start, end = month_bounds(timezone.datetime(2026, 12, 31, 23, 59, tzinfo=timezone.UTC))
    assert (start.isoformat(), end.isoformat()) == ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")


def test_a_rerun_refused_by_the_budget_says_why(editor_client, spent, start_run, settings, monkeypatch):
    import workflows.services

    settings.ENGINE_ROOM_WU_MONTHLY_BUDGET = 2
    settings.ENGINE_ROOM_WU_BUDGET_ENFORCE = True
    run = WorkflowRun.objects.filter(workflow_name="reports").first()
    original = workflows.services.run_rerun

    def rerun_behind_the_budget(**kwargs):
        check_wu_budget()  # where run_enqueue will call it once the hook is wired
        return original(**kwargs)

    monkeypatch.setattr(workflows.services, "run_rerun", rerun_behind_the_budget)
    count = WorkflowRun.objects.count()
    response = editor_client.post(f"/logs/runs/{run.id}/rerun/", follow=True)
    html = response.content.decode()
    assert "The monthly workload budget of 2 WU is used up" in html
    assert WorkflowRun.objects.count() == count
