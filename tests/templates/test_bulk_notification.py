"""Template 4, bulk notification: an admin broadcast fans out to every user, its progress visible meanwhile."""
import re
import time

import pytest
from django.contrib.auth.models import User
from django.test import Client

from datastore.selectors import data_type_get
from datastore.services import record_create
from logs.models import WorkflowRun
from scheduler.models import Batch
from tests.templates.conftest import body_text

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PEOPLE = [("ann@example.com", "Ann", False), ("bob@example.com", "Bob", False), ("cy@example.com", "Cy", True),
          ("dee@example.com", "Dee", False), ("eve@example.com", None, False)]


def test_a_broadcast_reaches_every_subscribed_user_with_progress_on_the_batches_page(stack):
    stack.install("bulk-notification")
    users = data_type_get(name="user")
    for address, name, unsubscribed in PEOPLE:
        record_create(data_type=users, fields={"email": address, "name": name, "unsubscribed": unsubscribed})
    admin = Client()
    admin.force_login(User.objects.create_user("ops", password="pw-for-tests-only", is_staff=True))
    stack.start(beat=True)

    # One second apart, so that the batch is visibly under way for a few seconds.
    answer = stack.call("broadcast_send", {"subject": "We ship on Friday", "body": "New reports are coming.",
                                           "interval_seconds": 1})
    assert answer.status_code == 202, answer.text
    assert answer.json()["recipients"] == 5 and answer.json()["progress"] == "/scheduler/batches/"
    batch_id = answer.json()["batch_id"]

    seen = []  # the progress a person watching the page would read
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = admin.get("/scheduler/batches/progress/").content.decode()
        row = re.search(r"broadcast_deliver.*?(\d+)% finished.*?(running|finished)", page, re.S)
        seen.append((int(row.group(1)), row.group(2)))
        if row.group(2) == "finished":
            break
        time.sleep(0.3)
    assert seen[-1] == (100, "finished"), (seen, stack.processes.logs())
    assert any(0 < percent < 100 and state == "running" for percent, state in seen), seen

    batch = Batch.objects.get(id=batch_id)
    assert (batch.total, batch.done, batch.failed) == (5, 5, 0)
    messages = stack.mail(4)
    assert sorted(m["To"] for m in messages) == ["ann@example.com", "bob@example.com", "dee@example.com",
                                                  "eve@example.com"]
    assert {m["Subject"] for m in messages} == {"We ship on Friday"}
    greetings = {m["To"]: body_text(m).splitlines()[0] for m in messages}
    assert greetings["ann@example.com"] == "Hi Ann," and greetings["eve@example.com"] == "Hi there,"
    runs = WorkflowRun.objects.filter(workflow_name="broadcast_deliver")
    assert sorted(runs.values_list("status", flat=True)) == ["skipped", "succeeded", "succeeded", "succeeded",
                                                              "succeeded"]
    assert set(runs.values_list("trigger", flat=True)) == {"list"} and set(runs.values_list("queue", flat=True)) == {
        "bulk"}
    stack.quiet(1)
    assert len(stack.smtp.envelopes) == 4, "the unsubscribed user got nothing"
