"""create_record: config validation and run."""
import pytest

from config.errors import ActionError
from datastore.models import Record
from workflows.actions import registry

action = registry.get("create_record")


def test_config_needs_type_and_fields():
    assert set(action.validate_definition({})) == {"type", "fields"}
    assert action.validate_definition({"type": "x", "fields": "nope"}) != {}


@pytest.mark.django_db
def test_run_creates_one_record_and_outputs_it(invoices, make_context):
    output = action.run(config={"type": "invoice", "fields": {"amount": "12.5", "status": "open"}}, context=make_context())
    record = Record.objects.get()
    assert output["id"] == str(record.id) and output["type"] == "invoice"
    assert output["amount"] == 12.5 and record.data["amount"] == 12.5


@pytest.mark.django_db
def test_run_refuses_bad_values_naming_the_field(invoices, make_context):
    with pytest.raises(ActionError) as error:
        action.run(config={"type": "invoice", "fields": {"amount": "twelve", "colour": "red"}}, context=make_context())
    assert "amount" in error.value.message and "colour" in error.value.message
    assert Record.objects.count() == 0


@pytest.mark.django_db
def test_run_refuses_an_unknown_type(make_context):
    with pytest.raises(ActionError, match="ghost"):
        action.run(config={"type": "ghost", "fields": {}}, context=make_context())
