"""The Content-Security-Policy in a real browser: every section's pages render and run their scripts
(htmx, Chart.js, Sortable, Swagger UI, the admin) with no violation reported by Chromium."""
import pytest
from django.db import transaction

from tests.browser.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_no_page_breaks_the_policy(browser, live_server, django_user_model, make_workflow):
    import os

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM calls below run beside Playwright's loop
    from datastore.services import data_type_create, record_create
    from workflows.services import run_enqueue

    django_user_model.objects.create_user("boss", password=PASSWORD, is_staff=True, is_superuser=True)
    workflow = make_workflow("shown", parameters=[{"name": "n", "type": "integer"}])
    lead = data_type_create(name="lead", fields=[{"name": "email", "type": "email"}])
    record_create(data_type=lead, fields={"email": "a@example.com"})
    with transaction.atomic():
        run = run_enqueue(workflow=workflow, params={"n": 1}, trigger="manual", dispatch_on_commit=False)
    from datetime import timedelta

    from django.utils import timezone

    from scheduler.services import scheduled_run_create

    for n in (1, 2):
        scheduled_run_create(workflow=workflow, params={"n": n}, due_at=timezone.now() + timedelta(days=1))

    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    violations = []
    page.on("console", lambda message: violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    page.on("pageerror", lambda error: violations.append(f"{page.url}: {error}"))
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("/")
    for path in ("/", "/workflows/", "/workflows/shown/", f"/logs/runs/{run.id}/", "/logs/", "/scheduler/",
                 "/scheduler/recurring/", "/scheduler/recurring/new/", "/data/", "/data/lead/", "/settings/",
                 "/settings/tokens/", "/settings/audit/", "/api/docs/", "/admin/", "/admin/logs/workflowrun/"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    # An inline handler the policy allows by hash (ENGINE_ROOM_CSP_INLINE_HANDLERS) really runs.
    page.goto("/scheduler/")
    page.get_by_label("Select all").check()
    assert page.locator("input[name=ids]").count() == 2
    assert all(box.is_checked() for box in page.locator("input[name=ids]").all())
    # Swagger UI really ran (its script is inline, allowed by the nonce): the operations are listed.
    page.goto("/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)
    context.close()
    assert not violations, "\n".join(violations)
