"""Failure alerts: one email per workflow per period, to the admins, sent when a live run fails."""
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from logs.models import FailureAlert
from logs.services import failure_alert_claim

from .conftest import MISSING_INVOICE, SET_VALUES, make_person

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerting(settings, eager_tasks, django_capture_on_commit_callbacks):
    settings.LOG_FAILURE_ALERTS = True
    settings.LOG_ALERT_PERIOD_SECONDS = 3600
    settings.ENGINE_ROOM_BASE_URL = "https://engine.example.com"
    admin = make_person("admin", "root")
    admin.is_superuser, admin.email = True, "root@example.com"
    admin.save()
    return settings


@pytest.fixture
def fail(start_run, django_capture_on_commit_callbacks):
    """fail(workflow) -> a failed run, with the callbacks it registered on commit executed."""

    def run(workflow, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return start_run(workflow, **kwargs)

    return run


@pytest.fixture
def nightly(make_workflow, invoices):
    return make_workflow("nightly", steps=[SET_VALUES, MISSING_INVOICE])


def test_the_first_failure_of_a_period_is_mailed_to_the_admins(alerting, nightly, fail):
    run = fail(nightly, trigger="recurring")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["root@example.com"]
    assert message.subject == "[Engine Room] Workflow nightly failed"
    assert f"https://engine.example.com/logs/runs/{run.id}/" in message.body
    assert "Step 2 'charge' (delete_record) failed" in message.body
    assert "Failed runs of this workflow in the last 60 minutes: 1" in message.body


def test_further_failures_in_the_period_are_not_mailed_but_another_workflow_is(alerting, nightly, fail, make_workflow):
    fail(nightly)
    fail(nightly)
    fail(nightly)
    assert len(mail.outbox) == 1
    fail(make_workflow("hourly", steps=[MISSING_INVOICE]))
    assert [message.subject for message in mail.outbox] == [
        "[Engine Room] Workflow nightly failed", "[Engine Room] Workflow hourly failed"]


def test_a_failure_after_the_period_is_mailed_again(alerting, nightly, fail):
    fail(nightly)
    FailureAlert.objects.update(last_sent_at=FailureAlert.objects.get().last_sent_at - timedelta(hours=1, seconds=1))
    run = fail(nightly)
    assert len(mail.outbox) == 2
    # Both runs failed within the hour (only the alert's clock was moved): the second mail says so.
    assert "Failed runs of this workflow in the last 60 minutes: 2" in mail.outbox[1].body
    assert FailureAlert.objects.get().last_run_id == run.id


def test_alerts_are_off_unless_switched_on(settings, eager_tasks, nightly, fail):
    make_person("admin", "root")
    settings.LOG_FAILURE_ALERTS = False
    fail(nightly)
    assert mail.outbox == [] and not FailureAlert.objects.exists()


def test_successes_and_editor_test_runs_are_never_mailed(alerting, nightly, fail, make_workflow, run_now,
                                                         django_capture_on_commit_callbacks):
    fail(make_workflow("fine", steps=[SET_VALUES]))
    with django_capture_on_commit_callbacks(execute=True):
        draft = run_now(nightly, draft=True)  # the editor's test run of the draft
    assert draft.status == "failed"
    assert mail.outbox == []


def test_alert_emails_setting_replaces_the_superusers(alerting, nightly, fail):
    alerting.LOG_ALERT_EMAILS = ["oncall@example.com", "lead@example.com"]
    fail(nightly)
    assert mail.outbox[0].to == ["oncall@example.com", "lead@example.com"]


@pytest.mark.django_db(transaction=True)
def test_only_one_of_many_simultaneous_failures_claims_the_alert(settings):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them anyway)")
    settings.LOG_ALERT_PERIOD_SECONDS = 3600
    results, barrier = [], threading.Barrier(8)

    def claim():
        from django.db import connection as thread_connection

        barrier.wait()
        try:
            results.append(failure_alert_claim(workflow_name="nightly", run_id=None))
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert FailureAlert.objects.count() == 1
