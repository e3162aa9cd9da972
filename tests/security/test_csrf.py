"""CSRF: every form carries the token, and every state-changing route refuses a signed-in session's
POST without it (pages and the management API alike). Token-authenticated machine calls need none."""
import json
import re
from pathlib import Path

import pytest
from django.test import Client

from .conftest import bearer
from .routes import PUBLIC_PAGES, url_of, walk

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# Reached with their own credentials (API token, signature, signed link), never a session: exempt.
EXEMPT = {"workflow-endpoint", "workflow-endpoint-bubble", "workflow-endpoint-test", "workflow-endpoint-test-bubble",
          "metrics", "healthz", "file-download"}


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    missing = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for match in re.finditer(r"<form\b[^>]*method=[\"']post[\"'][^>]*>(.*?)</form>", text, re.S | re.I):
            if "{% csrf_token %}" not in match.group(1):
                missing.append(f"{path.relative_to(TEMPLATES)}: {match.group(0)[:80]}")
    assert not missing, "\n".join(missing)
    # htmx requests (hx-post, hx-delete) carry it as a header set once on <body>.
    assert 'hx-headers=\'{"X-CSRFToken": "{{ csrf_token }}"}\'' in (TEMPLATES / "base.html").read_text()


def test_every_route_refuses_a_session_post_without_the_token(world, make_user):
    """Walks every named route as a signed-in admin (so no role check can be what refuses)."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(make_user("admin", username="boss"))
    problems = []
    for name, pattern in walk():
        if name in EXEMPT or name in PUBLIC_PAGES - {"login"}:
            continue
        url = url_of(name, pattern, world)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.generic(method, url, json.dumps({"name": "x"}), content_type="application/json")
            # The session is an admin's: a 403 here can only be the missing CSRF token.
            if response.status_code not in (403, 405):
                problems.append(f"{method} {url} ({name}) -> {response.status_code} {response.content[:80]!r}")
    assert not problems, "\n".join(problems)


def test_the_token_from_the_page_lets_the_same_post_through(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("admin", username="boss"))
    page = client.get("/settings/secrets/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    refused = client.post("/settings/secrets/", {"name": "K", "value": "v"})
    accepted = client.post("/settings/secrets/", {"name": "K", "value": "v", "csrfmiddlewaretoken": token})
    assert refused.status_code == 403 and accepted.status_code == 302


def test_api_tokens_need_no_csrf_token(world):
    """A bearer token is not ambient authority (a browser never sends it by itself): no CSRF check."""
    response = Client(enforce_csrf_checks=True).post(
        "/api/datatypes/", json.dumps({"name": "thing", "fields": []}), content_type="application/json",
        **bearer(world["admin_token"]))
    assert response.status_code == 201
