"""The URL walk the access and CSRF tests share: every named route, and one of everything to name."""
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from api_endpoints.models import ApiToken
from datastore.services import data_type_create, record_create
from scheduler.models import ScheduledRun
from scheduler.services import batch_create, recurring_event_create
from workflows.services import run_enqueue, secret_set

# Reachable without signing in, by design (docs/security.md lists each with its reason).
PUBLIC_PAGES = {"login", "password_reset", "password_reset_done", "password_reset_confirm",
                "password_reset_complete", "healthz", "file-download"}
# Machine endpoints: their own credentials, a JSON 401 without them.
TOKEN_ROUTES_PREFIXES = ("api-", "workflow-endpoint")
# Changes any signed-in person may make to their own session or account.
OWN_ACCOUNT = {"logout", "password_change", "password_change_done", "login"}
# POST only because their input is large (a whole draft): they compute an answer and change nothing,
# which the snapshot comparison below confirms.
READ_ONLY_POSTS = {"workflow-check", "workflow-test-inputs"}



def walk(patterns=None, prefix=""):
    """(route name, pattern) for every named URL pattern, depth first."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern).startswith("admin/"):
                continue  # the Django admin: staff only, covered by Django's own tests and test_admin_is_staff_only
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield pattern.name, pattern


@pytest.fixture
def world(make_workflow, make_user, make_token, admin_token):
    """One of everything a URL can name: a workflow and a data type both called "lead", a record, a
    run, a recurring event, a batch, a token, a secret, a person."""
    lead = make_workflow("lead", parameters=[{"name": "n", "type": "integer"}])
    other = make_workflow("other")
    data_type = data_type_create(name="lead", fields=[{"name": "email", "type": "email"}])
    record = record_create(data_type=data_type, fields={"email": "a@example.com"})
    with transaction.atomic():
        run = run_enqueue(workflow=lead, params={"n": 1}, trigger="manual", dispatch_on_commit=False)
        other_run = run_enqueue(workflow=other, params={}, trigger="manual", dispatch_on_commit=False)
    event = recurring_event_create(workflow=lead, frequency="daily", start=timezone.now() + timedelta(days=1))
    batch = batch_create(workflow=lead, items=[1, 2], item_param="n", start_at=timezone.now() + timedelta(days=1))
    secret_set(name="S", value="hunter2-secret")
    person = make_user("editor", username="someone")
    viewer = make_user("viewer")
    limited = make_token("limited", ["lead"])
    scheduled = ScheduledRun.objects.filter(batch=batch).first()
    uuid_ids = {"logs-run": run.id, "scheduler-recurring": event.id, "scheduler-batch": batch.id,
                "data-record": record.id, "workflow-run": run.id, "api-run": run.id, "api-record": record.id,
                "api-scheduled": scheduled.id, "api-recurring": event.id}
    int_ids = {"settings-token": ApiToken.objects.get(name="limited").id, "settings-user": person.id,
               "api-token": ApiToken.objects.get(name="limited").id}
    return {"run": run, "other_run": other_run, "viewer": viewer, "limited": limited, "admin_token": admin_token,
            "uuid_ids": uuid_ids, "int_ids": int_ids, "workflow": lead}


def url_of(name, pattern, world) -> str:
    regex_groups = set(pattern.pattern.regex.groupindex)
    kwargs = {}
    for key in regex_groups:
        if key == "id":
            ids = world["int_ids"] if any(name.startswith(p) for p in world["int_ids"]) else world["uuid_ids"]
            found = [str(value) for prefix, value in ids.items() if name.startswith(prefix)]
            assert found, f"the walk has no id for route {name!r}: add it to the world fixture"
            kwargs[key] = found[0]
        else:
            kwargs[key] = {"name": "lead", "type": "lead", "secret": "S", "number": "1", "format": "csv",
                           "uidb64": "MQ", "token": "set-password", "rest": "nothing"}[key]
    return reverse(name, kwargs=kwargs)


