"""delete_record: config validation and run."""
import pytest

from config.errors import ActionError
from datastore.models import Record
from datastore.services import record_create
from workflows.actions import registry

action = registry.get("delete_record")


def test_config_needs_type_and_id():
    assert set(action.validate_definition({})) == {"type", "id"}


@pytest.mark.django_db
def test_run_deletes_the_record(invoices, make_context):
    record = record_create(data_type=invoices, fields={"amount": 5})
    output = action.run(config={"type": "invoice", "id": str(record.id)}, context=make_context())
    assert output == {"id": str(record.id), "deleted": True}
    assert not Record.objects.exists()


@pytest.mark.django_db
def test_run_fails_for_a_missing_record(invoices, make_context):
    with pytest.raises(ActionError):
        action.run(config={"type": "invoice", "id": "00000000-0000-0000-0000-000000000000"}, context=make_context())
