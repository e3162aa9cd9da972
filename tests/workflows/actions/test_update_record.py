"""update_record: config validation and run."""
import pytest
from django.db import transaction

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


@pytest.mark.django_db
@pytest.mark.parametrize(("type_name", "record_id", "message"), [
    ("nothing", "00000000-0000-0000-0000-000000000000", "No data type named 'nothing'."),
    ("invoice", "00000000-0000-0000-0000-000000000000",
     "No invoice record with id '00000000-0000-0000-0000-000000000000'."),
    ("invoice", "not-an-id", "No invoice record with id 'not-an-id'."),
])
def test_run_names_what_is_missing(invoices, make_context, type_name, record_id, message):
    with pytest.raises(ActionError) as raised:
        action.run(config={"type": type_name, "id": record_id, "fields": {}}, context=make_context())
    assert raised.value.message == message


@pytest.mark.django_db
def test_run_leaves_a_record_of_another_type_alone(invoices, make_context):
    """The id is only looked for among records of the named type."""
    from datastore.services import data_type_create

    other = data_type_create(name="note", fields=[{"name": "status", "type": "text"}])
    note = record_create(data_type=other, fields={"status": "draft"})
    with pytest.raises(ActionError, match="No invoice record"), transaction.atomic():  # as the engine runs it
        action.run(config={"type": "invoice", "id": str(note.id), "fields": {"status": "paid"}},
                   context=make_context())
    note.refresh_from_db()
    assert note.data == {"status": "draft"}


@pytest.mark.django_db
def test_run_names_each_bad_field_and_changes_nothing(invoices, make_context):
    record = record_create(data_type=invoices, fields={"amount": 5, "status": "open"})
    with pytest.raises(ActionError) as raised, transaction.atomic():  # as the engine runs it
        action.run(config={"type": "invoice", "id": str(record.id), "fields": {"amount": "many", "colour": "red"}},
                   context=make_context())
    assert set(raised.value.extra["fields"]) == {"fields.amount", "fields.colour"}
    record.refresh_from_db()
    assert record.data == {"amount": 5, "status": "open"}


@pytest.mark.django_db(transaction=True)
def test_two_steps_changing_one_record_concurrently_keep_both_changes(invoices):
    import threading

    from django.db import connection

    from datastore.services import record_update_by_id

    if connection.vendor != "postgresql":
        pytest.skip("row locks: SQLite serialises whole transactions instead")
    record = record_create(data_type=invoices, fields={"amount": 5, "status": "open"})
    first_locked, order = threading.Event(), []

    def second():
        first_locked.wait(10)
        try:
            with transaction.atomic():
                record_update_by_id(type_name="invoice", id=str(record.id), fields={"amount": 7})
                order.append("second")
        finally:
            connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    with transaction.atomic():
        record_update_by_id(type_name="invoice", id=str(record.id), fields={"status": "paid"})
        first_locked.set()
        thread.join(0.5)  # the second waits on the first's lock, so it cannot have finished
        order.append("first")
    thread.join(10)
    record.refresh_from_db()
    assert order == ["first", "second"]
    assert record.data == {"amount": 7, "status": "paid"}  # neither change overwrote the other
