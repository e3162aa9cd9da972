"""Fixtures for the security tests: the API tests' workflows, tokens and people, shared rather than copied."""
from tests.api_endpoints.conftest import (  # noqa: F401  (fixtures)
    _fresh_caches,
    admin_token,
    bearer,
    definition,
    make_token,
    make_user,
    make_workflow,
    session_client,
    signing_secret,
)
from tests.security.routes import world  # noqa: F401,E402  (the URL walk's fixture)
