"""update_records: config validation and run."""
import pytest

from config.errors import ActionError
from datastore.services import record_create
from workflows.actions import registry

action = registry.get("update_records")


def test_config_needs_type_and_fields():
    assert set(action.validate_definition({})) == {"type", "fields"}


@pytest.mark.django_db
def test_run_changes_every_match_and_counts_them(invoices, make_context, settings):
    for amount in (1, 5, 50):
        record_create(data_type=invoices, fields={"amount": amount, "status": "open"})
    context = make_context()
    output = action.run(config={"type": "invoice", "filter": {"amount__gte": 5}, "fields": {"status": "closed"}},
                        context=context)
    assert output == {"count": 2}
    statuses = sorted((r.data["amount"], r.data["status"]) for r in invoices.records.all())
    assert statuses == [(1, "open"), (5, "closed"), (50, "closed")]
    assert context.wu == pytest.approx(2 * settings.ENGINE_ROOM_WU_COSTS["record_written"])


@pytest.mark.django_db
def test_run_refuses_a_filter_on_an_unknown_field(invoices, make_context):
    with pytest.raises(ActionError, match="colour"):
        action.run(config={"type": "invoice", "filter": {"colour": "red"}, "fields": {"status": "x"}},
                   context=make_context())
