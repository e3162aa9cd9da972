"""Logging in and out in a real browser, and the layout's navigation."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECTIONS = ["Workflows", "Data", "Scheduler", "Logs", "Settings"]


def test_log_in_see_the_sections_and_log_out(page, user):
    page.goto("/logs/")
    # Not signed in: the login page, which remembers where the visitor was going.
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/logs/$"))
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/logs/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Logs")
    nav = page.get_by_role("navigation", name="Main")
    for section in SECTIONS:
        expect(nav.get_by_role("link", name=section, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Logs", exact=True)).to_have_attribute("aria-current", "page")
    expect(nav.get_by_text("Ada Lovelace")).to_be_visible()
    # The vendored libraries loaded from our own static files.
    assert page.evaluate("typeof window.htmx") == "object"

    nav.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))


def test_wrong_password_is_reported(page, user):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")


def test_keyboard_reaches_the_navigation(logged_in_page):
    page = logged_in_page
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Engine Room", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    workflows = page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows", exact=True)
    expect(workflows).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Workflows")


def test_narrow_screen_keeps_every_section_visible(logged_in_page):
    page = logged_in_page
    page.set_viewport_size({"width": 375, "height": 740})
    nav = page.get_by_role("navigation", name="Main")
    for section in SECTIONS:
        expect(nav.get_by_role("link", name=section, exact=True)).to_be_in_viewport()
    expect(nav.get_by_role("button", name="Log out")).to_be_in_viewport()
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
