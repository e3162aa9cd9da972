"""Ready-made templates: bundle files of data types and workflows for the seed's real-world patterns."""
import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from config.errors import NotFoundError

BUNDLE_DIR = Path(__file__).resolve().parent / "bundles" / "templates"


@dataclass(frozen=True)
class Template:
    """One template: its slug (the bundle file's name), and what the editor shows for it."""

    slug: str
    title: str
    description: str

    @property
    def path(self) -> Path:
        return BUNDLE_DIR / f"{self.slug}.json"


# In the order the editor offers them; docs/templates.md describes each one.
TEMPLATES = (
    Template(
        "drip-email-sequence", "Drip email sequence after sign-up",
        "The sign-up webhook sends a welcome email and schedules three follow-ups days apart; unsubscribing "
        "cancels the ones not sent yet.",
    ),
    Template(
        "stripe-payment-webhook", "Stripe payment webhook",
        "A Stripe-signed invoice.paid event updates the subscription, unlocks the plan and notifies sales; a "
        "repeated delivery of the same event changes nothing.",
    ),
    Template(
        "nightly-aggregation", "Nightly aggregation",
        "A recurring event counts, totals and averages the day's paid orders (also by category) into a summary "
        "record for dashboards.",
    ),
    Template(
        "bulk-notification", "Bulk notification",
        "An admin broadcast emails every user, one run per user on the bulk queue, with the batch's progress "
        "on the Scheduler page.",
    ),
    Template(
        "crm-sync", "CRM sync on new record",
        "Every new lead is posted to HubSpot with a bearer token and gets HubSpot's id back; failed calls are "
        "retried with backoff.",
    ),
    Template(
        "subscription-expiry", "Subscription expiry check",
        "Daily, every lapsed paid account is downgraded to free in one bulk change and its owner is emailed.",
    ),
    Template(
        "async-export", "Asynchronous export (CSV and PDF)",
        "Builds a CSV and a PDF report of a customer's orders in the background and emails both as attachments.",
    ),
)
_BY_SLUG = {template.slug: template for template in TEMPLATES}


def template_list() -> list[dict]:
    """Every template as {"slug", "title", "description"}, for the editor's "New workflow → from template"."""
    return [{"slug": t.slug, "title": t.title, "description": t.description} for t in TEMPLATES]


def template_get(*, slug: str) -> Template:
    """The template with this slug; NotFoundError for any other (slugs never reach the file system unchecked)."""
    try:
        return _BY_SLUG[slug]
    except (KeyError, TypeError):
        raise NotFoundError(f"No template named {slug!r}.") from None


def template_load(slug: str) -> dict:
    """The template's bundle ({"format", "data_types", "workflows"}), a fresh copy the caller may change."""
    return copy.deepcopy(_read(template_get(slug=slug).path))


@cache
def _read(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)
