"""Data type and record writes: validation naming every field, references, bulk changes and the change signal."""
import pytest
from django.db import transaction

from config.errors import DefinitionError, RecordError
from datastore.models import DataType, Record
from datastore.selectors import record_count, record_to_dict
from datastore.services import (
    data_type_create,
    data_type_delete,
    data_type_update,
    record_create,
    record_delete,
    record_update,
    records_delete,
    records_update,
)
from datastore.signals import record_changed
from tests.factories import RecordFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def changes():
    """Every record_changed the test causes, as (kind, record, before, data_type)."""
    received = []

    def receiver(sender, *, kind, record, before, data_type, **kwargs):
        received.append({"kind": kind, "record": record, "before": before, "data_type": data_type})

    record_changed.connect(receiver, dispatch_uid="tests.datastore.changes", weak=False)
    yield received
    record_changed.disconnect(dispatch_uid="tests.datastore.changes")


@pytest.fixture
def company():
    return data_type_create(name="company", fields=[{"name": "name", "type": "text"}])


@pytest.fixture
def lead(company):
    return data_type_create(
        name="lead",
        fields=[
            {"name": "email", "type": "email", "required": True},
            {"name": "score", "type": "integer"},
            {"name": "zip", "type": "text"},
            {"name": "tags", "type": "text", "list": True},
            {"name": "company", "type": "record:company"},
            {"name": "plan", "type": "text"},
            {"name": "meta", "type": "object"},
        ],
    )


# --- data types -------------------------------------------------------------------------------


def test_data_type_create_stores_complete_field_declarations():
    data_type = data_type_create(name="invoice", fields=[{"name": "amount", "type": "number", "required": True}])
    data_type.refresh_from_db()
    assert data_type.fields == [
        {"name": "amount", "type": "number", "list": False, "required": True, "description": ""}
    ]


def test_data_type_create_names_every_bad_field():
    with pytest.raises(DefinitionError) as caught:
        data_type_create(
            name="invoice",
            fields=[
                {"name": "amount", "type": "money"},
                {"name": "id", "type": "text"},
                {"name": "due__at", "type": "date"},
                {"name": "note", "type": "text", "colour": "red"},
                {"name": "total", "type": "number"},
                {"name": "total", "type": "number"},
            ],
        )
    assert set(caught.value.fields) == {
        "fields[0].type",
        "fields[1].name",
        "fields[2].name",
        "fields[3]",
        "fields[5].name",
    }
    assert "colour" in caught.value.fields["fields[3]"]
    assert not DataType.objects.filter(name="invoice").exists()


@pytest.mark.parametrize("name", ["Invoice", "in-voice", "", None])
def test_data_type_create_refuses_bad_names(name):
    with pytest.raises(DefinitionError) as caught:
        data_type_create(name=name, fields=[])
    assert "name" in caught.value.fields


def test_data_type_create_refuses_a_taken_name(company):
    with pytest.raises(DefinitionError) as caught:
        data_type_create(name="company", fields=[])
    assert caught.value.fields == {"name": "already exists"}


def test_data_type_update_converts_values_of_a_retyped_field(lead):
    record = record_create(data_type=lead, fields={"email": "a@example.com", "zip": "00501", "tags": ["x"]})
    fields = [dict(field) for field in lead.fields]
    fields[2]["type"] = "integer"
    data_type_update(data_type=lead, fields=fields)
    record.refresh_from_db()
    assert record.data["zip"] == 501


def test_data_type_update_refuses_values_that_do_not_convert_and_changes_nothing(lead):
    record = record_create(data_type=lead, fields={"email": "a@example.com", "zip": "SW1A"})
    fields = [dict(field) for field in lead.fields]
    fields[2]["type"] = "integer"
    with pytest.raises(DefinitionError) as caught:
        data_type_update(data_type=lead, fields=fields)
    assert "expected an integer, got 'SW1A'" in caught.value.fields["fields[2].type"]
    lead.refresh_from_db()
    record.refresh_from_db()
    assert lead.field_map()["zip"]["type"] == "text"
    assert record.data["zip"] == "SW1A"


def test_data_type_update_drops_values_of_removed_fields_and_wraps_new_lists(lead):
    record = record_create(data_type=lead, fields={"email": "a@example.com", "plan": "pro", "zip": "1"})
    fields = [dict(field) for field in lead.fields if field["name"] != "plan"]
    fields[2]["list"] = True
    data_type_update(data_type=lead, fields=fields)
    record.refresh_from_db()
    assert record.data == {"email": "a@example.com", "zip": ["1"]}
    assert "plan" not in record_to_dict(Record.objects.get(pk=record.pk))


def test_data_type_delete_refuses_a_type_others_refer_to(lead, company):
    with pytest.raises(DefinitionError, match="lead.company"):
        data_type_delete(data_type=company)
    assert DataType.objects.filter(name="company").exists()


def test_data_type_delete_removes_its_records(company):
    record_create(data_type=company, fields={"name": "Acme"})
    data_type_delete(data_type=company)
    assert not DataType.objects.filter(name="company").exists()
    assert not Record.objects.exists()


# --- one record -------------------------------------------------------------------------------


def test_record_create_stores_canonical_values_and_signals(lead, changes):
    record = record_create(
        data_type=lead, fields={"email": "Ada@Example.com", "score": "42", "zip": "02134", "tags": ["vip"]}
    )
    record.refresh_from_db()
    assert record.data == {"email": "Ada@example.com", "score": 42, "zip": "02134", "tags": ["vip"]}
    assert changes == [
        {"kind": "created", "record": record_to_dict(record), "before": None, "data_type": "lead"}
    ]
    assert changes[0]["record"]["zip"] == "02134"


def test_record_create_names_every_bad_field(lead, changes):
    with pytest.raises(RecordError) as caught:
        record_create(data_type=lead, fields={"score": "high", "tags": "vip", "colour": "red"})
    assert caught.value.fields == {
        "fields.score": "expected an integer, got 'high'",
        "fields.tags": "expected a list, got 'vip'",
        "fields.colour": "unknown field; lead has email, score, zip, tags, company, plan, meta",
        "fields.email": "required",
    }
    assert not Record.objects.exists()
    assert changes == []


@pytest.mark.parametrize("email", [None, ""])
def test_record_create_enforces_required_fields(lead, email):
    with pytest.raises(RecordError) as caught:
        record_create(data_type=lead, fields={"email": email, "score": 1})
    assert caught.value.fields == {"fields.email": "required"}


def test_record_references_must_exist_and_be_of_the_right_type(lead, company):
    acme = record_create(data_type=company, fields={"name": "Acme"})
    other_lead = record_create(data_type=lead, fields={"email": "b@example.com"})
    record = record_create(data_type=lead, fields={"email": "a@example.com", "company": record_to_dict(acme)})
    assert record.data["company"] == str(acme.pk)
    with pytest.raises(RecordError) as caught:
        record_create(data_type=lead, fields={"email": "c@example.com", "company": str(other_lead.pk)})
    assert caught.value.fields == {"fields.company": f"no company record with id '{other_lead.pk}'"}


def test_record_update_changes_only_the_given_fields_and_signals_before_and_after(lead, changes):
    record = record_create(data_type=lead, fields={"email": "a@example.com", "score": 1, "plan": "free"})
    before = record_to_dict(record)
    record_update(record=record, fields={"score": 2, "plan": None})
    stored = Record.objects.get(pk=record.pk)
    assert stored.data == {"email": "a@example.com", "score": 2}
    assert record.data == stored.data
    assert changes[-1]["kind"] == "updated"
    assert changes[-1]["before"] == before
    assert changes[-1]["record"]["score"] == 2
    assert changes[-1]["record"]["plan"] is None


def test_record_update_that_changes_nothing_writes_and_signals_nothing(lead, changes):
    record = record_create(data_type=lead, fields={"email": "a@example.com", "score": 1})
    modified = record.modified
    record_update(record=record, fields={"score": "1"})
    assert Record.objects.get(pk=record.pk).modified == modified
    assert [change["kind"] for change in changes] == ["created"]


def test_record_update_cannot_clear_a_required_field(lead):
    record = record_create(data_type=lead, fields={"email": "a@example.com"})
    with pytest.raises(RecordError) as caught:
        record_update(record=record, fields={"email": None})
    assert caught.value.fields == {"fields.email": "required"}
    assert Record.objects.get(pk=record.pk).data["email"] == "a@example.com"


def test_record_delete_signals_the_last_state(lead, changes):
    record = record_create(data_type=lead, fields={"email": "a@example.com"})
    last = record_to_dict(record)
    record_delete(record=record)
    assert not Record.objects.exists()
    assert changes[-1] == {"kind": "deleted", "record": last, "before": None, "data_type": "lead"}


def test_the_signal_is_sent_inside_the_writing_transaction(lead, changes):
    with pytest.raises(RuntimeError), transaction.atomic():
        record_create(data_type=lead, fields={"email": "a@example.com"})
        assert len(changes) == 1  # already sent, before any commit
        raise RuntimeError("roll back")
    assert not Record.objects.exists()


# --- many records -----------------------------------------------------------------------------


def test_records_update_changes_matches_in_bulk_and_signals_each(lead, changes):
    pro = [record_create(data_type=lead, fields={"email": f"p{i}@example.com", "plan": "pro", "score": i}) for i in range(3)]
    free = record_create(data_type=lead, fields={"email": "f@example.com", "plan": "free", "score": 9})
    befores = {str(record.pk): record_to_dict(record) for record in pro}
    changes.clear()

    count = records_update(data_type=lead, filter={"plan": "pro"}, fields={"score": "50", "tags": ["upgraded"]})

    assert count == 3
    for record in pro:
        assert Record.objects.get(pk=record.pk).data == {
            "email": record.data["email"], "plan": "pro", "score": 50, "tags": ["upgraded"]
        }
    assert Record.objects.get(pk=free.pk).data["score"] == 9
    assert sorted(change["record"]["id"] for change in changes) == sorted(befores)
    for change in changes:
        assert change["kind"] == "updated"
        assert change["before"] == befores[change["record"]["id"]]
        assert change["record"]["score"] == 50
        assert change["record"] == record_to_dict(Record.objects.get(pk=change["record"]["id"]))


def test_records_update_clears_fields_with_null_and_skips_unchanged_records(lead, changes):
    a = record_create(data_type=lead, fields={"email": "a@example.com", "plan": "pro", "score": 1})
    b = record_create(data_type=lead, fields={"email": "b@example.com", "score": 2})
    changes.clear()
    count = records_update(data_type=lead, filter={}, fields={"plan": None})
    assert count == 2
    assert Record.objects.get(pk=a.pk).data == {"email": "a@example.com", "score": 1}
    assert Record.objects.get(pk=b.pk).data == {"email": "b@example.com", "score": 2}
    assert [change["record"]["id"] for change in changes] == [str(a.pk)]
    assert record_count(data_type=lead, filter={"plan__isnull": True}) == 2


def test_records_update_refuses_bad_fields_and_bad_filters_and_writes_nothing(lead, changes):
    record = record_create(data_type=lead, fields={"email": "a@example.com", "score": 1})
    changes.clear()
    with pytest.raises(RecordError) as caught:
        records_update(data_type=lead, filter={}, fields={"score": "lots", "email": ""})
    assert caught.value.fields == {"fields.score": "expected an integer, got 'lots'", "fields.email": "required"}
    with pytest.raises(RecordError) as caught:
        records_update(data_type=lead, filter={"rank__gt": 1}, fields={"score": 2})
    assert caught.value.fields == {"filter.rank__gt": "unknown field 'rank'"}
    assert Record.objects.get(pk=record.pk).data["score"] == 1
    assert changes == []


def test_records_delete_deletes_matches_and_signals_each(lead, changes):
    old = [record_create(data_type=lead, fields={"email": f"o{i}@example.com", "score": i}) for i in range(3)]
    keep = record_create(data_type=lead, fields={"email": "k@example.com", "score": 10})
    lasts = {str(record.pk): record_to_dict(record) for record in old}
    changes.clear()

    count = records_delete(data_type=lead, filter={"score__lt": 5})

    assert count == 3
    assert list(Record.objects.values_list("pk", flat=True)) == [keep.pk]
    assert {change["record"]["id"]: change["record"] for change in changes} == lasts
    assert {change["kind"] for change in changes} == {"deleted"}


def test_records_delete_touches_only_its_own_type(lead, company):
    record_create(data_type=company, fields={"name": "Acme"})
    RecordFactory(data_type=lead, data={"email": "a@example.com"})
    assert records_delete(data_type=lead, filter=None) == 1
    assert Record.objects.get().data_type == company



def test_records_update_replaces_objects_whole_and_keeps_any_text(lead):
    record = record_create(data_type=lead, fields={"email": "a@example.com", "meta": {"a": {"c": 2}, "keep": 1}})
    records_update(data_type=lead, filter={}, fields={"meta": {"a": {"b": 1}}, "plan": "Zoë's \"plan\" 100%"})
    stored = Record.objects.get(pk=record.pk).data
    assert stored["meta"] == {"a": {"b": 1}}
    assert stored["plan"] == 'Zoë\'s "plan" 100%'
    assert record_count(data_type=lead, filter={"plan": 'Zoë\'s "plan" 100%'}) == 1
