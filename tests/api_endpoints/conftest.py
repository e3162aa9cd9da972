"""Fixtures for the API tests: workflows, tokens, people with roles, and a clean cache per test."""
import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.test import Client

from api_endpoints.services import token_create
from workflows.selectors import version_definition
from workflows.services import secret_set, workflow_create, workflow_publish

ECHO_STEPS = [{"key": "echo", "action": "set_values", "config": {"values": {"got": "{{ params }}"}}}]


def definition(name="echo", steps=None, parameters=(), **settings) -> dict:
    return {
        "format": 1, "name": name, "parameters": list(parameters),
        "steps": list(ECHO_STEPS if steps is None else steps), **settings,
    }


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Cached lookups of an earlier test's (rolled back) rows must not answer in this one."""
    cache.clear()
    version_definition.cache_clear()
    yield
    cache.clear()


@pytest.fixture
def make_workflow(db):
    """Create (and by default publish) a workflow; settings are definition keys (auth=..., response=...)."""

    def make(name="echo", steps=None, parameters=(), publish=True, **settings):
        workflow = workflow_create(definition=definition(name, steps, parameters, **settings))
        if publish:
            workflow_publish(workflow=workflow)
        return workflow

    return make


@pytest.fixture
def admin_token(db) -> str:
    return token_create(name="admin").value


@pytest.fixture
def make_token(db):
    """make_token("name", ["wf", ...]) -> the token's value (a limited token when workflows are given)."""

    def make(name="limited", workflows=None) -> str:
        return token_create(name=name, workflows=workflows).value

    return make


@pytest.fixture
def signing_secret(db) -> str:
    value = "whsec_test_0123456789abcdef"
    secret_set(name="SIGNING", value=value)
    return value


@pytest.fixture
def make_user(db):
    """make_user("editor") -> a signed-in-able person with that role (admin is staff; others by Group)."""

    def make(role="editor", username=None) -> User:
        user = User.objects.create_user(username or f"{role}-person", password="pw-for-tests-only")
        if role == "admin":
            user.is_staff = True
            user.save()
        elif role in ("editor", "viewer"):
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def session_client(make_user):
    """session_client("viewer") -> a Client signed in as a person with that role (CSRF enforced)."""

    def make(role="editor") -> Client:
        client = Client(enforce_csrf_checks=True)
        client.force_login(make_user(role))
        return client

    return make


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
