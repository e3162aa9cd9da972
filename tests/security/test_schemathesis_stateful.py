"""Schemathesis, stateful: chains of management API calls that reuse what earlier calls created
(a data type, then its records; a workflow, then its publish, test run and versions), so that the
fuzzing reaches existing things instead of 404s. The stateless run over every operation is
tests/api_endpoints/test_schemathesis.py; this one finds what only a sequence can: no 5xx, ever."""
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from config.wsgi import application
from tests.conftest import requests_in_test_transaction

from .conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)

LARGE = os.environ.get("ENGINE_ROOM_RELIABILITY_SIZE") == "large"


@pytest.fixture
def wsgi_app():
    with requests_in_test_transaction():
        yield application


def test_sequences_of_management_calls_never_5xx(wsgi_app, admin_token, make_workflow):
    make_workflow("seed", parameters=[{"name": "n", "type": "integer"}])
    headers = {"Authorization": bearer(admin_token)["HTTP_AUTHORIZATION"]}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app, headers=headers)
    machine = schema.as_state_machine()
    # Links inferred from the response schemas and path parameters (POST /api/datatypes/ -> GET
    # /api/datatypes/{name}/ ...), besides the "random root" rules every operation gets.
    links = sum(len(operation.incoming) for operation in machine._transitions.operations.values())
    assert links >= 20, "no links between operations were inferred: the stateful run would test nothing"

    statuses: list[int] = []

    class Chains(machine):
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, **kwargs):
            # Only the absence of server errors: the stateless test checks conformance in depth.
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                                response.text[:500])

    Chains.run(settings=settings(
        max_examples=60 if LARGE else 12, stateful_step_count=8, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck),
    ))
    # The chains really ran, authenticated, and created things that later steps used.
    assert len(statuses) > 30 and 201 in statuses and 401 not in statuses, sorted(set(statuses))
