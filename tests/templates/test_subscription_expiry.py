"""Template 6, subscription expiry: a daily check downgrades lapsed paid accounts in one bulk change and
emails each owner, once."""
from datetime import timedelta

import pytest
from django.utils import timezone

from datastore.selectors import data_type_get
from datastore.services import record_create
from logs.models import WorkflowRun
from tests.integration.conftest import wait_until
from tests.templates.conftest import body_text

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_lapsed_accounts_go_free_and_their_owners_hear_about_it_once(stack):
    stack.install("subscription-expiry")
    now = timezone.now()
    users = data_type_get(name="user")

    def user(email, plan, expires):
        return record_create(data_type=users, fields={"email": email, "name": email.split("@")[0].title(),
                                                      "plan": plan, "plan_expires_at": expires})

    ada = user("ada@example.com", "pro", now - timedelta(days=1))
    bob = user("bob@example.com", "team", now - timedelta(hours=1))
    cy = user("cy@example.com", "pro", now + timedelta(days=10))
    dee = user("dee@example.com", "free", None)
    eve = user("eve@example.com", "free", now - timedelta(days=30))
    untouched = eve.modified
    stack.start(beat=True)

    setup = stack.call("expiry_check_start", {"frequency": {"every": 2, "unit": "seconds"}})
    assert stack.run_of(setup).status == "succeeded"

    messages = stack.mail(2, timeout=60)
    assert sorted(m["To"] for m in messages) == ["ada@example.com", "bob@example.com"]
    ada_mail = next(m for m in messages if m["To"] == "ada@example.com")
    assert ada_mail["Subject"] == "Your paid plan has ended"
    assert f"ended on {(now - timedelta(days=1)).date().isoformat()}" in body_text(ada_mail)
    assert body_text(ada_mail).startswith("Hi Ada,")

    for record in (ada, bob, cy, dee, eve):
        record.refresh_from_db()
    assert [r.data["plan"] for r in (ada, bob, cy, dee, eve)] == ["free", "free", "pro", "free", "free"]
    assert eve.modified == untouched, "a free account with an old date is left alone"

    checks = WorkflowRun.objects.filter(workflow_name="expiry_check", trigger="recurring", status="succeeded")
    first = checks.order_by("created").first()
    outputs = {step.key: step.output for step in first.steps.all()}
    assert outputs["lapsed"]["count"] == 2 and outputs["downgrade"] == {"count": 2}
    assert outputs["notify"]["count"] == 2
    # Later checks find nobody: no account is downgraded or emailed twice.
    wait_until(lambda: checks.count() >= 3, timeout=40, message="two more daily checks")
    later = checks.order_by("-created").first()
    assert later.steps.get(key="lapsed").output["count"] == 0
    assert later.steps.get(key="notify").status == "skipped"
    assert len(stack.smtp.envelopes) == 2
    assert sorted(WorkflowRun.objects.filter(workflow_name="expiry_notify").values_list("status", flat=True)) == [
        "succeeded", "succeeded"]
