"""Fixtures for browser tests: Debian's Chromium through Playwright, a user, and a signed-in page."""
import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls from a
# thread with a running loop; the tests' own ORM calls (creating users) are safe, so allow them.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# Debian's package, never a browser that Playwright downloads (the machines have no internet).
CHROMIUM = Path(os.environ.get("ENGINE_ROOM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct horse battery staple"


@pytest.fixture
def page(browser, live_server):
    """A fresh page (own cookies) at 1280×800 that fails on any 4xx/5xx answer from our server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    failed = []
    # A missing static file or a server error would otherwise go unnoticed behind a working page.
    page.on("response", lambda response: failed.append(response) if response.status >= 400 else None)
    yield page
    context.close()
    assert not failed, [f"{response.status} {response.url}" for response in failed]


@pytest.fixture
def user(transactional_db, django_user_model):
    """Someone who can sign in (not staff)."""
    return django_user_model.objects.create_user(
        username="ada", password=PASSWORD, first_name="Ada", last_name="Lovelace"
    )


def log_in(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form, as a person would, and wait for the home page."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("/")


@pytest.fixture
def logged_in_page(page, user):
    """A page signed in as `user` through the login form."""
    log_in(page, user.username)
    return page
