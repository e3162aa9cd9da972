"""Template 1, drip email sequence: sign-up schedules the emails days (here: seconds) apart; unsubscribing stops them."""
from datetime import timedelta

import pytest

from datastore.models import Record
from scheduler.models import ScheduledRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_signup_sends_the_welcome_then_the_drip_and_unsubscribing_cancels_the_rest(stack):
    stack.install("drip-email-sequence")
    stack.start(beat=True)  # beat ticks the dispatcher that starts scheduled runs

    signup = stack.call("drip_signup", {"email": "ada@example.com", "name": "Ada", "first_delay_seconds": 1,
                                        "second_delay_seconds": 3, "third_delay_seconds": 300})
    assert signup.status_code == 202, signup.text
    assert stack.run_of(signup).status == "succeeded"

    welcome, tips, story = stack.mail(3, timeout=60)
    assert [m["Subject"] for m in (welcome, tips, story)] == [
        "Welcome aboard, Ada!", "3 tips to get started, Ada", "How teams like yours use us"]
    assert {m["To"] for m in (welcome, tips, story)} == {"ada@example.com"}

    user = Record.objects.get(data_type__name="user", data__email="ada@example.com")
    scheduled = {str(row.id): row for row in ScheduledRun.objects.filter(workflow_name="drip_send")}
    assert set(user.data["drip_ids"]) == set(scheduled)
    first, second, third = sorted(scheduled.values(), key=lambda row: row.due_at)
    # The delays are the parameters: the second follow-up is due 2 s after the first (plus the moments
    # between two steps), the third much later.
    assert timedelta(seconds=2) <= second.due_at - first.due_at < timedelta(seconds=5)
    assert third.due_at - first.due_at > timedelta(seconds=290)
    assert [ScheduledRun.objects.get(id=row.id).status for row in (first, second, third)] == [
        "dispatched", "dispatched", "pending"]

    stop = stack.call("drip_unsubscribe", {"email": "ada@example.com"})
    run = stack.run_of(stop)
    assert run.status == "succeeded", run.error
    assert run.steps.get(key="cancel").output == {"cancelled": 1}
    assert ScheduledRun.objects.get(id=third.id).status == "cancelled"
    user.refresh_from_db()
    assert user.data["unsubscribed"] is True and "drip_ids" not in user.data

    stack.quiet(3)  # more dispatcher ticks: the cancelled email stays unsent
    assert len(stack.smtp.envelopes) == 3
    assert ScheduledRun.objects.get(id=third.id).run is None
