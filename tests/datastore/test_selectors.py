"""Reads: data types by name, records by id, and the dict form records take in expressions and the API."""
import json
import uuid
from datetime import UTC, datetime

import pytest

from config.errors import NotFoundError
from datastore.models import Record
from datastore.selectors import data_type_get, record_get, record_to_dict
from datastore.services import data_type_create, record_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead():
    return data_type_create(
        name="lead",
        fields=[{"name": "email", "type": "email"}, {"name": "score", "type": "integer"}, {"name": "zip", "type": "text"}],
    )


def test_data_type_get_by_name(lead):
    assert data_type_get(name="lead") == lead
    with pytest.raises(NotFoundError, match="No data type named 'leads'"):
        data_type_get(name="leads")


def test_record_get_finds_only_records_of_that_type(lead):
    company = data_type_create(name="company", fields=[])
    record = record_create(data_type=lead, fields={"email": "a@example.com"})
    assert record_get(data_type=lead, id=str(record.pk).upper()) == record
    for bad_id in [str(uuid.uuid4()), "not-a-uuid", None]:
        with pytest.raises(NotFoundError):
            record_get(data_type=lead, id=bad_id)
    with pytest.raises(NotFoundError, match="No company record"):
        record_get(data_type=company, id=record.pk)


def test_record_to_dict_has_the_record_keys_and_every_field(lead):
    record = record_create(data_type=lead, fields={"email": "a@example.com", "zip": "01234"})
    Record.objects.filter(pk=record.pk).update(
        created=datetime(2026, 11, 26, 13, 20, tzinfo=UTC), modified=datetime(2026, 11, 26, 13, 21, 0, 500, tzinfo=UTC)
    )
    as_dict = record_to_dict(Record.objects.get(pk=record.pk))
    assert as_dict == {
        "id": str(record.pk),
        "type": "lead",
        "created": "2026-11-26T13:20:00Z",
        "modified": "2026-11-26T13:21:00.000500Z",
        "email": "a@example.com",
        "score": None,
        "zip": "01234",
    }
    assert json.loads(json.dumps(as_dict)) == as_dict
