"""Shared fixtures, and the rule that CI may skip nothing."""
import contextlib
import os
import socket
import time
from types import SimpleNamespace
from uuid import uuid4

import pytest
from aiosmtpd.controller import Controller
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection

from workflows.actions.base import StepContext

IN_CI = os.environ.get("CI") == "true"


@contextlib.contextmanager
def requests_in_test_transaction():
    """Requests served in-process keep the test's connection, as in Django's test client: closing it after
    each request would end the test's (rolled back) transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CollectingHandler:
    """An aiosmtpd handler that keeps every message; recipients starting "reject" get a 550, "busy" a 450."""

    def __init__(self):
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 No such user"
        if address.startswith("busy"):
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on 127.0.0.1, with Django's SMTP backend pointed at it; yields its handler."""
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    # pytest-django swaps in the locmem backend for tests; these mails must cross a real socket.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    handler.port = port
    yield handler
    controller.stop()


@pytest.fixture(autouse=True)
def _fresh_definition_cache():
    """Published versions are cached by id for the process; test databases reuse ids, production never does."""
    from workflows.selectors import version_definition, version_number

    version_definition.cache_clear()
    version_number.cache_clear()
    yield
    version_definition.cache_clear()
    version_number.cache_clear()


@pytest.fixture
def make_context():
    """make_context(**overrides) -> a StepContext for step 0 of a stand-in run, 60 s to go."""

    def make(**overrides):
        values = {
            "run": SimpleNamespace(id=uuid4()),
            "step": SimpleNamespace(index=0, key="s"),
            "attempt": 1,
            "deadline": time.monotonic() + 60,
        }
        values.update(overrides)
        return StepContext(**values)

    return make


# One Playwright (one event loop in this thread) for the whole session: a second sync_playwright()
# beside a live one fails, so every browser test, in any folder, shares this one.
@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session; each test gets its own context."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()
