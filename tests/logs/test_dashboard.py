"""The dashboard (home page): figures from real runs, and from daily aggregates once runs are pruned."""
import json
import re

import pytest
from django.urls import reverse

from logs.metrics import dashboard_data, histogram_percentile, percentile
from logs.models import RunDailyStat, WorkflowRun
from logs.services import runs_prune

from .conftest import MISSING_INVOICE, SET_VALUES, age

pytestmark = pytest.mark.django_db


@pytest.fixture
def some_runs(make_workflow, invoices, start_run):
    good = make_workflow("good", steps=[SET_VALUES])
    bad = make_workflow("bad", steps=[SET_VALUES, MISSING_INVOICE])
    runs = [start_run(good) for _ in range(3)] + [start_run(bad)]
    age(runs[0], hours=3)
    queued = start_run(good, execute=False)
    return runs + [queued]


def test_figures_come_from_the_runs(some_runs):
    data = dashboard_data()
    hours = data["hours"]["statuses"]
    assert sum(hours["succeeded"]) == 3 and sum(hours["failed"]) == 1 and sum(hours["queued"]) == 1
    assert hours["succeeded"][-1] == 2 and hours["succeeded"][-4] == 1  # one run was three hours ago
    assert data["last_24h"] == {"runs": 5, "failed": 1, "in_flight": 1, "failure_rate": 0.25,
                                "wu": pytest.approx(sum(run.wu for run in some_runs))}
    workflows = {item["name"]: item for item in data["workflows"]}
    assert workflows["bad"]["failure_rate"] == 1.0 and workflows["good"]["failure_rate"] == 0.0
    durations = sorted(run.duration_ms for run in some_runs[:3])
    assert workflows["good"]["p50_ms"] == pytest.approx(durations[1], abs=0.1)
    assert workflows["good"]["p95_ms"] == pytest.approx(percentile(durations, 0.95), abs=0.1)
    slowest = data["slowest_steps"]
    assert slowest and slowest == sorted(slowest, key=lambda step: -step["duration_ms"])
    assert {step["workflow"] for step in slowest} == {"good", "bad"}
    assert [item["id"] for item in data["recent_failures"]] == [str(some_runs[3].id)]


def test_the_home_page_embeds_the_figures_for_its_charts(editor_client, some_runs):
    html = editor_client.get(reverse("home")).content.decode()
    embedded = json.loads(re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert embedded["last_24h"]["runs"] == 5
    for canvas in ("chart-hours", "chart-days", "chart-durations", "chart-wu"):
        assert f'<canvas id="{canvas}" role="img"' in html
    assert "/static/vendor/chartjs/chart.umd.min.js" in html and "/static/js/logs-dashboard.js" in html
    assert '<p class="kpi-value kpi-bad" id="kpi-failure-rate">25.0%</p>' in html


def test_charts_outlive_pruned_runs(some_runs, settings):
    settings.LOG_RETENTION_DAYS = 14
    old = age(some_runs[3], days=20)  # the failed run, 20 days ago
    before = dashboard_data()["days"]
    day = old.created.date().isoformat()
    index = before["labels"].index(day)
    assert before["statuses"]["failed"][index] == 1

    assert runs_prune().deleted == 1
    assert not WorkflowRun.objects.filter(id=old.id).exists()
    after = dashboard_data()["days"]
    assert after["statuses"]["failed"][index] == 1
    assert after["wu"]["bad"][index] == pytest.approx(old.wu)
    assert after["failure_rate"][index] == 1.0
    assert RunDailyStat.objects.get().failed == 1


def test_percentiles_from_histograms_are_bucket_bounds():
    # 10 runs: 5 under 50 ms, 4 under 1 s, 1 at 7 s.
    histogram = [0, 0, 5, 0, 0, 0, 4, 0, 0, 1, 0, 0, 0, 0]
    assert histogram_percentile(histogram, 0.5, maximum=7000) == 50
    assert histogram_percentile(histogram, 0.95, maximum=7000) == 7000


def test_the_figures_are_also_json(editor_client, some_runs):
    response = editor_client.get(reverse("logs-metrics"))
    assert response["Content-Type"] == "application/json"
    assert response.json()["last_24h"]["failed"] == 1
