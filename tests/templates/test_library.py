"""The template library: every bundle imports as it is, lists itself, and installs without harming existing data."""
import json

import pytest
from django.core.management import call_command

from config.errors import ConflictError, NotFoundError, ValidationError
from datastore.models import DataType
from datastore.selectors import data_type_get
from datastore.services import data_type_create, record_create
from workflows.models import Workflow
from workflows.services import template_install
from workflows.templates_library import BUNDLE_DIR, TEMPLATES, template_list, template_load

pytestmark = pytest.mark.django_db

SLUGS = [template.slug for template in TEMPLATES]


def test_the_list_offers_seven_templates_each_with_a_bundle_file():
    """The editor's list names every bundle file under workflows/bundles/templates, and nothing else."""
    listed = template_list()
    assert [item["slug"] for item in listed] == SLUGS
    assert len(listed) == 7
    assert {path.stem for path in BUNDLE_DIR.glob("*.json")} == set(SLUGS)
    for item in listed:
        assert item["title"] and len(item["description"]) > 40


@pytest.mark.parametrize("slug", SLUGS)
def test_each_template_imports_and_publishes_with_the_cli(slug, capsys):
    """`manage.py workflows import workflows/bundles/templates/<slug>.json` makes every workflow live."""
    call_command("workflows", "import", str(BUNDLE_DIR / f"{slug}.json"))
    bundle = template_load(slug)
    names = [spec["name"] for spec in bundle["workflows"]]
    out = capsys.readouterr().out
    for name in names:
        assert f"Imported {name} and published." in out
        assert Workflow.objects.get(name=name).live_version is not None
    for spec in bundle["data_types"]:
        assert [field["name"] for field in data_type_get(name=spec["name"]).fields] == [
            field["name"] for field in spec["fields"]]


def test_all_templates_import_together_in_any_order_without_losing_fields():
    """Shared data types are declared alike in every template, so one import never drops another's fields."""
    declared: dict[str, list] = {}
    for slug in SLUGS:
        for spec in template_load(slug)["data_types"]:
            declared.setdefault(spec["name"], spec["fields"])
            assert spec["fields"] == declared[spec["name"]], f"{slug} declares {spec['name']} differently"
    for slug in reversed(SLUGS):
        call_command("workflows", "import", str(BUNDLE_DIR / f"{slug}.json"), stdout=None)
    for name, fields in declared.items():
        assert [f["name"] for f in DataType.objects.get(name=name).fields] == [f["name"] for f in fields]


def test_the_demo_bundle_fields_keep_their_types_in_the_templates():
    """A deployment seeded with demo.json can import the templates: its user and subscription fields stay."""
    demo = json.loads((BUNDLE_DIR.parent / "demo.json").read_text())
    templates = {spec["name"]: spec for slug in SLUGS for spec in template_load(slug)["data_types"]}
    for spec in demo["data_types"]:
        if spec["name"] in templates:
            theirs = {field["name"]: field for field in templates[spec["name"]]["fields"]}
            for field in spec["fields"]:
                assert theirs[field["name"]]["type"] == field["type"], (spec["name"], field["name"])


def test_install_adds_missing_fields_and_keeps_existing_ones_and_records():
    """Installing over an existing `user` type keeps its own fields and values, adding only what it lacks."""
    users = data_type_create(name="user", fields=[
        {"name": "email", "type": "email", "required": True}, {"name": "nickname", "type": "text"}])
    ada = record_create(data_type=users, fields={"email": "ada@example.com", "nickname": "countess"})
    installed = template_install(slug="drip-email-sequence")
    assert sorted(workflow.name for workflow in installed) == ["drip_send", "drip_signup", "drip_unsubscribe"]
    assert all(workflow.live_version is None for workflow in installed), "drafts until the user publishes"
    fields = [field["name"] for field in data_type_get(name="user").fields]
    assert fields[:2] == ["email", "nickname"] and {"unsubscribed", "drip_ids", "plan"} <= set(fields)
    ada.refresh_from_db()
    assert ada.data["nickname"] == "countess"


def test_install_refuses_existing_workflows_and_clashing_fields_and_changes_nothing():
    """A workflow name in use, or a field of another type, stops the install before anything is written."""
    call_command("workflows", "import", str(BUNDLE_DIR / "crm-sync.json"), stdout=None)
    with pytest.raises(ConflictError, match="crm_sync_lead"):
        template_install(slug="crm-sync")
    data_type_create(name="order", fields=[{"name": "customer_email", "type": "email"},
                                           {"name": "amount", "type": "text"}])
    with pytest.raises(ValidationError) as raised:
        template_install(slug="async-export")
    assert raised.value.fields == {"order.amount": "is text here; the template needs number"}
    assert not Workflow.objects.filter(name="export_orders").exists()
    assert [f["name"] for f in data_type_get(name="order").fields] == ["customer_email", "amount"]


def test_an_unknown_or_path_like_slug_is_not_found():
    """Only listed slugs load: a path never reaches the file system."""
    for slug in ("nope", "../demo", "crm-sync.json", None):
        with pytest.raises(NotFoundError):
            template_load(slug)


@pytest.mark.parametrize("slug", SLUGS)
def test_every_template_workflow_opens_in_the_editor(slug, client, django_user_model):
    """After "from template" the user lands in the editor: each workflow's page shows its steps."""
    template_install(slug=slug)
    client.force_login(django_user_model.objects.create_user("editor-person", password="pw-for-tests-only"))
    for spec in template_load(slug)["workflows"]:
        page = client.get(f"/workflows/{spec['name']}/")
        assert page.status_code == 200, spec["name"]
        for step in spec["steps"]:
            assert step["key"] in page.content.decode(), (spec["name"], step["key"])
