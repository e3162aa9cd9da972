"""The audit log: sign-ins, token and secret changes, role changes and publishes are recorded with who
and from where — through the pages, the API and the admin alike — and admins alone can read it."""
import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AuditEvent
from audit.services import audit_prune

from .conftest import bearer

pytestmark = pytest.mark.django_db


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", "target", "actor_name"))


def admin_client(make_user, ip="192.0.2.10"):
    admin = make_user("admin", username="boss")
    client = Client(REMOTE_ADDR=ip)
    client.force_login(admin)
    AuditEvent.objects.all().delete()  # creating the people above is not what these tests look at
    return client


def test_sign_ins_are_recorded_with_the_address_and_without_the_password(make_user):
    make_user("editor", username="ada")
    AuditEvent.objects.all().delete()
    Client(REMOTE_ADDR="198.51.100.7").post("/accounts/login/", {"username": "ada", "password": "nope-123"})
    Client(REMOTE_ADDR="198.51.100.7").post("/accounts/login/", {"username": "ada", "password": "pw-for-tests-only"})
    assert actions() == [("login_failed", "user ada", ""), ("login", "user ada", "ada")]
    assert set(AuditEvent.objects.values_list("ip", flat=True)) == {"198.51.100.7"}
    assert "nope-123" not in json.dumps(list(AuditEvent.objects.values("detail", "target")))


def test_token_secret_role_and_publish_changes_are_recorded(make_user, make_workflow,
                                                            django_capture_on_commit_callbacks):
    client = admin_client(make_user)
    client.post("/settings/tokens/", {"name": "zapier"})
    token = client.get("/api/tokens/").json()["results"][0]
    client.post(f"/settings/tokens/{token['id']}/revoke/")
    client.post("/settings/secrets/", {"name": "STRIPE", "value": "sk_live_abc"})
    client.post("/settings/secrets/", {"name": "STRIPE", "value": "sk_live_def"})
    client.post("/settings/secrets/STRIPE/delete/")
    person = make_user("viewer", username="carl")
    AuditEvent.objects.filter(target="user carl").delete()
    # A role is settled when its transaction commits ("remove every role group, add one" is one change).
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/settings/users/{person.id}/", {"role": "editor", "active": "on"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/settings/users/{person.id}/", {"role": "editor", "active": "on"})  # no change: no event
    make_workflow("billing", publish=False)
    client.post("/api/workflows/billing/publish/")

    recorded = actions()
    prefix = f"er_{token['prefix']}_…"
    assert recorded == [
        ("token_created", f"token zapier ({prefix})", "boss"),
        ("token_revoked", f"token zapier ({prefix})", "boss"),
        ("secret_created", "secret STRIPE", "boss"),
        ("secret_changed", "secret STRIPE", "boss"),
        ("secret_deleted", "secret STRIPE", "boss"),
        ("role_changed", "user carl", "boss"),
        ("workflow_published", "workflow billing v1", "boss"),
    ], recorded
    assert AuditEvent.objects.get(action="role_changed").detail == {"role": ["viewer", "editor"]}
    assert set(AuditEvent.objects.values_list("ip", flat=True)) == {"192.0.2.10"}
    assert "sk_live" not in json.dumps(list(AuditEvent.objects.values("detail", "target")))


def test_api_token_callers_and_admin_changes_are_named(make_user, admin_token):
    Client().post("/api/secrets/", json.dumps({"name": "K", "value": "v"}), content_type="application/json",
                  **bearer(admin_token))
    event = AuditEvent.objects.get(action="secret_created")
    assert event.actor_name == "token:admin" and event.actor is None
    boss = User.objects.create_superuser("root", password="pw-for-tests-only")
    client = Client()
    client.force_login(boss)
    carl = make_user("editor", username="carl")
    client.post(f"/admin/auth/user/{carl.id}/change/", {
        "username": "carl", "is_active": "on", "is_staff": "on", "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00", "groups": [g.id for g in carl.groups.all()],
    })
    changed = AuditEvent.objects.filter(action="role_changed", target="user carl").last()
    assert changed is not None and changed.detail.get("is_staff") == [False, True] and changed.actor_name == "root"


def test_only_admins_read_the_log(make_user):
    client = admin_client(make_user)
    client.post("/settings/secrets/", {"name": "SEEN", "value": "v"})
    page = client.get("/settings/audit/")
    assert page.status_code == 200 and b"secret SEEN" in page.content
    filtered = client.get("/settings/audit/?action=login")
    assert b"secret SEEN" not in filtered.content
    viewer = Client()
    viewer.force_login(make_user("viewer"))
    assert viewer.get("/settings/audit/").status_code == 403
    editor = Client()
    editor.force_login(make_user("editor"))
    assert editor.get("/settings/audit/").status_code == 403
    assert Client().get("/settings/audit/").status_code == 302


def test_events_past_the_retention_are_pruned(settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.AUDIT_RETENTION_DAYS = 30
    old = AuditEvent.objects.create(action="login", target="user old")
    AuditEvent.objects.filter(id=old.id).update(at=timezone.now() - timedelta(days=31))
    AuditEvent.objects.create(action="login", target="user new")
    assert audit_prune() == 1
    assert list(AuditEvent.objects.values_list("target", flat=True)) == ["user new"]
