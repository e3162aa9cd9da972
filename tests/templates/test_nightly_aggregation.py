"""Template 3, nightly aggregation: a recurring event writes the day's order totals into a summary record."""
from datetime import timedelta

import pytest
from django.utils import timezone

from datastore.models import Record
from datastore.selectors import data_type_get
from datastore.services import record_create
from logs.models import WorkflowRun
from scheduler.models import RecurringEvent
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_recurring_event_writes_count_sum_average_and_per_category_totals(stack):
    stack.install("nightly-aggregation")
    orders = data_type_get(name="order")
    for amount, category, status in [(10, "books", "paid"), (20.5, "books", "paid"), (5, "music", "paid"),
                                      (100, "music", "refunded")]:
        record_create(data_type=orders, fields={"customer_email": "ada@example.com", "amount": amount,
                                                "category": category, "status": status})
    old = record_create(data_type=orders, fields={"customer_email": "bob@example.com", "amount": 999,
                                                  "category": "games", "status": "paid"})
    Record.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=3))
    stack.start(beat=True)

    # Every two seconds instead of nightly: the frequency is the start workflow's parameter.
    setup = stack.call("nightly_order_totals_start", {"frequency": {"every": 2, "unit": "seconds"}})
    assert setup.status_code == 202, setup.text
    setup_run = stack.run_of(setup)
    assert setup_run.status == "succeeded", setup_run.error
    event = RecurringEvent.objects.get(id=setup_run.steps.get(key="schedule").output["id"])
    assert event.workflow.name == "nightly_order_totals" and event.params == {"hours": 24}

    summaries = wait_until(lambda: list(Record.objects.filter(data_type__name="order_summary").order_by("created")[:2])
                           if Record.objects.filter(data_type__name="order_summary").count() >= 2 else None,
                           timeout=60, message=f"two summaries\n{stack.processes.logs()}")
    first = summaries[0].data
    assert {key: first[key] for key in ("orders", "revenue", "average_order", "revenue_by_category")} == {
        "orders": 3, "revenue": 35.5, "average_order": 11.8333333333,
        "revenue_by_category": [{"key": "books", "value": 30.5}, {"key": "music", "value": 5}],
    }
    assert first["day"] == (timezone.now() - timedelta(hours=24)).date().isoformat()
    assert first["period_start"] < first["period_end"]
    assert summaries[1].data["orders"] == 3, "the event keeps firing with the same window"

    runs = WorkflowRun.objects.filter(workflow_name="nightly_order_totals", trigger="recurring")
    assert runs.filter(status="succeeded").count() >= 2
    by_key = {step.key: step.output for step in runs.filter(status="succeeded").first().steps.all()}
    assert by_key["orders"] == {"value": 3} and by_key["revenue"] == {"value": 35.5}
