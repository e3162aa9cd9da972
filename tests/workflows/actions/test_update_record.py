"""update_record: config validation and run."""
import pytest

from config.errors import ActionError
from datastore.services import record_create
from workflows.actions import registry

action = registry.get("update_record")


def test_config_needs_type_id_and_fields():
    assert set(action.validate_definition({})) == {"type", "id", "fields"}


@pytest.mark.django_db
def test_run_changes_only_the_given_fields(invoices, make_context):
    record = record_create(data_type=invoices, fields={"amount": 5, "status": "open"})
    output = action.run(config={"type": "invoice", "id": str(record.id), "fields": {"status": "paid"}},
                        context=make_context())
    record.refresh_from_db()
    assert record.data == {"amount": 5, "status": "paid"}
    assert output["status"] == "paid" and output["amount"] == 5


@pytest.mark.django_db
def test_run_fails_clearly_for_a_missing_record(invoices, make_context):
    with pytest.raises(ActionError):
        action.run(config={"type": "invoice", "id": "00000000-0000-0000-0000-000000000000", "fields": {}},
                   context=make_context())
