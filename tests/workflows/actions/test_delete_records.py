"""delete_records: config validation and run."""
import pytest

from datastore.services import record_create
from workflows.actions import registry

action = registry.get("delete_records")


def test_config_needs_a_type():
    assert set(action.validate_definition({})) == {"type"}


@pytest.mark.django_db
def test_run_deletes_every_match(invoices, make_context):
    for status in ("open", "open", "paid"):
        record_create(data_type=invoices, fields={"amount": 1, "status": status})
    output = action.run(config={"type": "invoice", "filter": {"status": "open"}}, context=make_context())
    assert output == {"count": 2}
    assert [r.data["status"] for r in invoices.records.all()] == ["paid"]
