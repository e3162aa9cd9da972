"""Shared fixtures, and the rule that CI may skip nothing."""
import os
import socket

import pytest
from django.db import connection

IN_CI = os.environ.get("CI") == "true"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def real_services_missing() -> list[str]:
    """What the integration layer needs and this machine lacks right now."""
    missing = []
    if os.environ.get("ENGINE_ROOM_TEST_DB") == "sqlite" or not _answers("127.0.0.1", 5432):
        missing.append("PostgreSQL")
    if not _answers("127.0.0.1", 6379):
        missing.append("Redis")
    return missing


def pytest_collection_modifyitems(config, items):
    for item in items:
        if {"integration", "reliability"} & set(item.path.parts):
            item.add_marker(pytest.mark.integration)
    missing = real_services_missing()
    if not missing:
        return
    marker = pytest.mark.skip(reason=f"integration layer needs {' and '.join(missing)}")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(marker)


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        message = f"*** {skipped} test(s) SKIPPED: a layer of the suite did not run (see the summary above). ***"
        if reporter:
            reporter.write_line(message, red=True, bold=True)
        if IN_CI and session.exitstatus == 0:
            # CI must run every layer: a skip there means a missing service or browser, not a pass.
            session.exitstatus = 1


@pytest.fixture
def database_url(transactional_db) -> str:
    """A DATABASE_URL for subprocesses (workers, beat, servers) that points at the test database."""
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        user = settings_dict.get("USER") or "postgres"
        return f"postgres://{user}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    return f"sqlite:///{settings_dict['NAME']}"
