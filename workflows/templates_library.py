"""Ready-made templates: bundle files of data types and workflows for the seed's real-world patterns."""
import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.db import transaction

from config.errors import ConflictError, NotFoundError, ValidationError

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


@transaction.atomic
def template_install(*, slug: str, publish: bool = False, user=None) -> list:
    """Import a template without touching what exists: data types gain the fields they lack, existing
    fields and workflows are never changed. ConflictError names a workflow that exists or a field whose
    type differs; nothing is imported then."""
    from datastore.models import DataType
    from workflows.models import Workflow
    from workflows.services import bundle_import

    bundle = template_load(slug)
    names = [spec["name"] for spec in bundle["workflows"]]
    taken = sorted(Workflow.objects.filter(name__in=names).values_list("name", flat=True))
    if taken:
        raise ConflictError(
            f"The template's workflow(s) {', '.join(taken)} exist already; rename or delete them first.",
            extra={"workflows": taken},
        )
    existing = {data_type.name: data_type for data_type in DataType.objects.filter(
        name__in=[spec["name"] for spec in bundle["data_types"]])}
    clashes = {}
    for spec in bundle["data_types"]:
        current = existing.get(spec["name"])
        if current is None:
            continue
        fields = current.field_map()
        for field in spec["fields"]:
            have = fields.get(field["name"])
            if have and (have["type"], have.get("list", False)) != (field["type"], field.get("list", False)):
                clashes[f"{spec['name']}.{field['name']}"] = (
                    f"is {_kind(have)} here; the template needs {_kind(field)}"
                )
        # Keep every field as it is (and in its place); add the template's missing ones at the end.
        spec["fields"] = list(current.fields) + [f for f in spec["fields"] if f["name"] not in fields]
    if clashes:
        raise ValidationError("The template's data types clash with yours.", fields=clashes)
    return bundle_import(document=bundle, publish=publish, user=user)


def _kind(field: dict) -> str:
    return f"a list of {field['type']}" if field.get("list") else field["type"]
