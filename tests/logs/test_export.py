"""Export of the filtered runs as CSV or JSON lines: every matching run, streamed, safe to open in a spreadsheet."""
import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from .conftest import MISSING_INVOICE, SET_VALUES

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(make_workflow, invoices, start_run, monkeypatch):
    monkeypatch.setattr("logs.selectors.PAGE_SIZE", 2)  # the export is not limited to a page
    params = [{"name": "note", "type": "text"}]
    billing = make_workflow("billing", parameters=params, steps=[MISSING_INVOICE])
    reports = make_workflow("reports", parameters=params, steps=[SET_VALUES])
    failed = [start_run(billing, {"note": note}) for note in ("=HYPERLINK(\"http://evil\")", "plain", "ünïcode")]
    start_run(reports, {"note": "fine"})
    return failed


def test_csv_has_every_filtered_run_and_defuses_formulas(editor_client, runs):
    response = editor_client.get(reverse("logs-export", args=["csv"]), {"workflow": "billing", "status": "failed"})
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="runs-') and ".csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert {row["id"] for row in rows} == {str(run.id) for run in runs}
    assert {row["workflow"] for row in rows} == {"billing"} and {row["status"] for row in rows} == {"failed"}
    assert all(row["error_code"] == "step_failed" and row["version"] == "1" for row in rows)
    notes = {json.loads(row["params"])["note"] for row in rows}
    assert notes == {'=HYPERLINK("http://evil")', "plain", "ünïcode"}  # inside JSON, never a leading "="
    assert not any(value.startswith(("=", "+", "@")) for row in rows for value in row.values())


def test_a_cell_that_would_be_a_formula_is_quoted(editor_client, make_workflow, start_run):
    run = start_run(make_workflow("calc", steps=[SET_VALUES]), caller="=cmd|' /C calc'!A0")
    rows = list(csv.DictReader(io.StringIO(editor_client.get(reverse("logs-export", args=["csv"])).getvalue().decode())))
    assert rows[0]["id"] == str(run.id)
    assert rows[0]["caller"] == "'=cmd|' /C calc'!A0"


def test_json_lines_carry_parameters_as_json(editor_client, runs):
    response = editor_client.get(reverse("logs-export", args=["jsonl"]), {"q": "plain"})
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = response.getvalue().decode().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert row["params"] == {"note": "plain"} and row["workflow"] == "billing" and row["status"] == "failed"
    assert row["duration_ms"] > 0 and row["wu"] > 0


def test_the_run_list_links_to_the_export_of_its_filters(editor_client, runs):
    html = editor_client.get(reverse("logs-page"), {"workflow": "billing", "status": "failed"}).content.decode()
    assert 'href="/logs/export.csv?workflow=billing&amp;status=failed"' in html
    assert 'href="/logs/export.jsonl?workflow=billing&amp;status=failed"' in html
    assert editor_client.get("/logs/export.xml").status_code == 404
