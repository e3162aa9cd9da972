"""Schemathesis against /api/schema/: generated calls to every operation find no 5xx and no answer
that breaks the document (bounded and derandomized, so CI sees the same examples every time)."""
import pytest
import schemathesis
from django.core.cache import cache
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api_endpoints.models import ApiToken
from config.wsgi import application
from datastore.services import data_type_create, record_create
from tests.conftest import requests_in_test_transaction
from workflows.models import Workflow
from workflows.services import run_enqueue, secret_set

pytestmark = pytest.mark.django_db

CHECKS = [schemathesis.checks.not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 3}
KNOWN_EXAMPLES = 4


@pytest.fixture
def wsgi_app():
    """The real WSGI application (config.wsgi), called in-process within the test's transaction."""
    with requests_in_test_transaction():
        yield application


@pytest.fixture
def fixture_app(make_workflow, admin_token):
    """Workflows that succeed (async, so no worker is needed), some data, a secret, and the admin token."""
    make_workflow("echo", parameters=[
        {"name": "email", "type": "email", "required": True},
        {"name": "amount", "type": "number"},
        {"name": "tags", "type": "text", "list": True},
        {"name": "when", "type": "datetime"},
        {"name": "meta", "type": "object"},
    ])
    make_workflow("lookup", methods=["GET", "POST"], auth="public",
                  parameters=[{"name": "q", "type": "text", "required": True}, {"name": "n", "type": "integer"}])
    lead = data_type_create(name="lead", fields=[{"name": "email", "type": "email"}, {"name": "score", "type": "integer"}])
    record = record_create(data_type=lead, fields={"email": "a@example.com", "score": 5})
    secret_set(name="SIGNING", value="whsec_x")
    with transaction.atomic():
        run = run_enqueue(workflow=Workflow.objects.get(name="echo"), params={"email": "a@example.com"},
                          trigger="manual", dispatch_on_commit=False)
    # Real values for the path parameters, so that generated calls reach existing things too.
    known = {
        "/api/workflows/": {"name": "echo"}, "/api/datatypes/": {"name": "lead"},
        "/api/records/": {"type": "lead", "id": str(record.id)}, "/api/secrets/": {"name": "SIGNING"},
        "/api/tokens/": {"id": str(ApiToken.objects.get().id)}, "/api/runs/": {"id": str(run.id)},
    }
    return admin_token, known


def _known_path_parameters(path: str, known: dict) -> dict | None:
    if "{" not in path:
        return None
    return next((values for prefix, values in known.items() if path.startswith(prefix)), None)


def test_no_server_errors_and_no_schema_violations(fixture_app, wsgi_app):
    """Every operation, positive and negative examples: never a 5xx, every answer as documented."""
    token, known = fixture_app
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30 and any(op.path == "/api/wf/echo" for op in operations)
    failures = []
    for operation in operations:
        runs = [(mode, examples, None) for mode, examples in EXAMPLES.items()]
        path_parameters = _known_path_parameters(operation.path, known)
        if path_parameters:
            runs.append((GenerationMode.POSITIVE, KNOWN_EXAMPLES, path_parameters))
        for mode, examples, fixed in runs:

            @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
            def check(case):
                # Each example in its own savepoint, rolled back, so one example's writes (a deleted
                # fixture workflow) cannot change the next; the lookups cache is cleared to match.
                with transaction.atomic():
                    case.call_and_validate(headers=headers, checks=CHECKS)
                    transaction.set_rollback(True)
                cache.clear()

            try:
                check()
            except Exception as exc:  # collected, so one run reports every failing operation
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}, {fixed}): {exc}")
    assert not failures, "\n\n".join(failures)
