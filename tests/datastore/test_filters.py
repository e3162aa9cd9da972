"""Every filter lookup and ordering, on whichever database the run uses (make test runs PostgreSQL and SQLite)."""
from datetime import UTC, date, datetime, timedelta

import pytest
from django.http import QueryDict

from config.errors import RecordError
from datastore.models import Record
from datastore.selectors import record_count, record_find
from datastore.services import data_type_create, record_create, record_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead():
    return data_type_create(
        name="lead",
        fields=[
            {"name": "name", "type": "text"},
            {"name": "email", "type": "email"},
            {"name": "score", "type": "integer"},
            {"name": "ratio", "type": "number"},
            {"name": "active", "type": "boolean"},
            {"name": "signed_on", "type": "date"},
            {"name": "seen_at", "type": "datetime"},
            {"name": "tags", "type": "text", "list": True},
            {"name": "lucky", "type": "integer", "list": True},
            {"name": "manager", "type": "record:lead"},
            {"name": "meta", "type": "object"},
        ],
    )


@pytest.fixture
def leads(lead):
    """Four leads whose values differ in the ways text ordering gets wrong (9 < 10, "…:00Z" vs "…:00.5Z")."""
    ada = record_create(
        data_type=lead,
        fields={
            "name": "Ada Lovelace", "email": "ada@example.com", "score": 9, "ratio": 0.5, "active": True,
            "signed_on": "2026-01-09", "seen_at": "2026-03-01T10:00:00Z", "tags": ["vip", "beta"],
            "lucky": [7, 13], "meta": {"source": "ads"},
        },
    )
    bob = record_create(
        data_type=lead,
        fields={
            "name": "Bob", "email": "bob@Example.org", "score": 10, "ratio": 2, "active": False,
            "signed_on": "2026-01-10", "seen_at": "2026-03-01T10:00:00.500Z", "tags": ["beta"],
            "lucky": [1], "manager": str(ada.pk),
        },
    )
    cyd = record_create(
        data_type=lead,
        fields={
            "name": "12345", "email": "cyd@example.com", "score": 100, "ratio": 10.25, "active": True,
            "signed_on": "2025-12-31", "seen_at": "2026-03-01T09:59:59.999999Z", "tags": ["VIP"],
            "manager": str(ada.pk),
        },
    )
    dee = record_create(data_type=lead, fields={"name": "dee"})
    return {"ada": ada, "bob": bob, "cyd": cyd, "dee": dee}


def names(lead, leads, filter, **kwargs):
    by_id = {record.pk: key for key, record in leads.items()}
    found = [by_id[record.pk] for record in record_find(data_type=lead, filter=filter, **kwargs)]
    return found if "order_by" in kwargs else sorted(found)


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"name": "Bob"}, ["bob"]),
        ({"name__exact": "bob"}, []),
        ({"name": "12345"}, ["cyd"]),
        ({"name": 12345}, ["cyd"]),
        ({"score": 10}, ["bob"]),
        ({"score": "10"}, ["bob"]),
        ({"ratio": 2.0}, ["bob"]),
        ({"active": True}, ["ada", "cyd"]),
        ({"active": "false"}, ["bob"]),
        ({"signed_on": "2026-01-10"}, ["bob"]),
        ({"seen_at": "2026-03-01T11:00:00.5+01:00"}, ["bob"]),
        ({"email": "BOB@example.org"}, []),
        ({"email": "bob@EXAMPLE.org"}, ["bob"]),
        ({"score": None}, ["dee"]),
        ({"score__lt": 10}, ["ada"]),
        ({"score__lte": 10}, ["ada", "bob"]),
        ({"score__gt": 9}, ["bob", "cyd"]),
        ({"score__gte": 100}, ["cyd"]),
        ({"ratio__gt": 1}, ["bob", "cyd"]),
        ({"ratio__lt": 2.5}, ["ada", "bob"]),
        ({"signed_on__lt": "2026-01-10"}, ["ada", "cyd"]),
        ({"signed_on__gte": datetime(2026, 1, 9, 23, 0, tzinfo=UTC)}, ["ada", "bob"]),
        ({"signed_on__lte": date(2025, 12, 31)}, ["cyd"]),
        ({"seen_at__gt": "2026-03-01T10:00:00Z"}, ["bob"]),
        ({"seen_at__lt": "2026-03-01T10:00:00.5Z"}, ["ada", "cyd"]),
        ({"seen_at__lte": "2026-03-01T10:00:00Z"}, ["ada", "cyd"]),
        ({"seen_at__gte": datetime(2026, 3, 1, 10, tzinfo=UTC)}, ["ada", "bob"]),
        ({"name__lt": "B"}, ["ada", "cyd"]),
        ({"name__contains": "Love"}, ["ada"]),
        ({"name__contains": "love"}, []),
        ({"name__icontains": "LOVE"}, ["ada"]),
        ({"email__icontains": "EXAMPLE.ORG"}, ["bob"]),
        ({"tags__contains": "vip"}, ["ada"]),
        ({"tags__contains": "VIP"}, ["cyd"]),
        ({"tags__contains": "vi"}, []),
        ({"tags__contains": "beta"}, ["ada", "bob"]),
        ({"lucky__contains": 13}, ["ada"]),
        ({"lucky__contains": "1"}, ["bob"]),
        ({"score__in": [9, 100]}, ["ada", "cyd"]),
        ({"name__in": ["Bob", "dee", "nobody"]}, ["bob", "dee"]),
        ({"active__in": [False]}, ["bob"]),
        ({"signed_on__in": ["2026-01-09", "2025-12-31"]}, ["ada", "cyd"]),
        ({"score__in": []}, []),
        ({"manager__isnull": True}, ["ada", "dee"]),
        ({"manager__isnull": False}, ["bob", "cyd"]),
        ({"meta__isnull": False}, ["ada"]),
        ({"tags__isnull": True}, ["dee"]),
        ({"score__gte": 9, "active": True}, ["ada", "cyd"]),
    ],
)
def test_lookups(lead, leads, filter, expected):
    assert names(lead, leads, filter) == expected
    assert record_count(data_type=lead, filter=filter) == len(expected)


def test_record_references_filter_by_id_or_record(lead, leads):
    ada = leads["ada"]
    assert names(lead, leads, {"manager": str(ada.pk)}) == ["bob", "cyd"]
    assert names(lead, leads, {"manager": {"id": str(ada.pk), "type": "lead"}}) == ["bob", "cyd"]
    assert names(lead, leads, {"manager__in": [str(ada.pk), str(leads["dee"].pk)]}) == ["bob", "cyd"]


def test_columns_id_created_and_modified(lead, leads):
    ada, bob = leads["ada"], leads["bob"]
    assert names(lead, leads, {"id": str(ada.pk)}) == ["ada"]
    assert names(lead, leads, {"id__in": [str(ada.pk), str(bob.pk).upper()]}) == ["ada", "bob"]
    Record.objects.filter(pk=ada.pk).update(created=datetime(2020, 1, 1, tzinfo=UTC))
    assert names(lead, leads, {"created__lt": "2021-01-01T00:00:00Z"}) == ["ada"]
    assert names(lead, leads, {"created__gte": datetime(2021, 1, 1, tzinfo=UTC)}) == ["bob", "cyd", "dee"]
    cutoff = datetime.now(UTC) - timedelta(seconds=1)
    Record.objects.exclude(pk=bob.pk).update(modified=datetime(2020, 1, 1, tzinfo=UTC))
    record_update(record=bob, fields={"score": 11})
    assert names(lead, leads, {"modified__gt": cutoff}) == ["bob"]
    assert names(lead, leads, {"id__isnull": True}) == []


def test_cleared_values_match_isnull_and_no_comparison(lead, leads):
    record_update(record=leads["cyd"], fields={"score": None, "seen_at": None, "signed_on": None})
    assert names(lead, leads, {"score__isnull": True}) == ["cyd", "dee"]
    assert names(lead, leads, {"score__gt": 0}) == ["ada", "bob"]
    assert names(lead, leads, {"score__lt": 1000}) == ["ada", "bob"]
    assert names(lead, leads, {"seen_at__lt": "2030-01-01T00:00:00Z"}) == ["ada", "bob"]
    assert names(lead, leads, {"signed_on__gt": "2000-01-01"}) == ["ada", "bob"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("score", ["ada", "bob", "cyd", "dee"]),
        ("-score", ["cyd", "bob", "ada", "dee"]),
        ("ratio", ["ada", "bob", "cyd", "dee"]),
        ("-ratio", ["cyd", "bob", "ada", "dee"]),
        ("signed_on", ["cyd", "ada", "bob", "dee"]),
        ("seen_at", ["cyd", "ada", "bob", "dee"]),
        ("-seen_at", ["bob", "ada", "cyd", "dee"]),
        ("name", ["cyd", "ada", "bob", "dee"]),
        ("-email", ["cyd", "bob", "ada", "dee"]),
    ],
)
def test_order_by_orders_by_value_with_empty_values_last(lead, leads, order_by, expected):
    assert names(lead, leads, None, order_by=order_by) == expected


def test_order_by_booleans_and_columns(lead, leads):
    assert names(lead, leads, {"active__isnull": False}, order_by="active") == ["bob", "cyd", "ada"]
    assert names(lead, leads, {"active__isnull": False}, order_by="-active")[-1] == "bob"
    assert names(lead, leads, None, order_by="-created") == ["dee", "cyd", "bob", "ada"]
    assert names(lead, leads, None, order_by="created") == ["ada", "bob", "cyd", "dee"]
    assert [r.pk for r in record_find(data_type=lead)] == [leads[key].pk for key in ["dee", "cyd", "bob", "ada"]]


def test_limit(lead, leads):
    assert names(lead, leads, None, order_by="score", limit=2) == ["ada", "bob"]
    with pytest.raises(RecordError) as caught:
        record_find(data_type=lead, limit=-1)
    assert "limit" in caught.value.fields


def test_query_string_filters(lead, leads):
    query = QueryDict("score__gte=10&active=true&name__in=Bob&name__in=12345")
    assert names(lead, leads, query, source="query") == ["cyd"]
    assert names(lead, leads, QueryDict("score__in=9,100"), source="query") == ["ada", "cyd"]
    assert names(lead, leads, QueryDict("score__in=[9, 10]"), source="query") == ["ada", "bob"]
    assert names(lead, leads, QueryDict("manager__isnull=yes"), source="query") == ["ada", "dee"]
    assert names(lead, leads, QueryDict("name=12345"), source="query") == ["cyd"]


@pytest.mark.parametrize(
    ("filter", "errors"),
    [
        ({"rank": 1}, {"filter.rank": "unknown field 'rank'"}),
        ({"score__between": [1, 2]}, {"filter.score__between": "unknown lookup 'between'; use one of exact, lt, lte, gt, gte, contains, icontains, in, isnull"}),
        ({"score__gt": "abc"}, {"filter.score__gt": "expected an integer, got 'abc'"}),
        ({"score__contains": 1}, {"filter.score__contains": "'contains' does not apply to a integer field; use one of exact, lt, lte, gt, gte, in, isnull"}),
        ({"tags__in": ["a"]}, {"filter.tags__in": "'in' does not apply to a list of text field; use one of contains, isnull"}),
        ({"meta": {"a": 1}}, {"filter.meta": "'exact' does not apply to a object field; use one of isnull"}),
        ({"active__gt": False}, {"filter.active__gt": "'gt' does not apply to a boolean field; use one of exact, in, isnull"}),
        ({"score__lt": None}, {"filter.score__lt": "'lt' needs a value, got null"}),
        ({"manager": "someone"}, {"filter.manager": "expected a lead id, got 'someone'"}),
        ({"score__in": 5}, {"filter.score__in": "expected a list, got 5"}),
        ({"rank": 1, "score__gt": "x"}, {"filter.rank": "unknown field 'rank'", "filter.score__gt": "expected an integer, got 'x'"}),
    ],
)
def test_bad_filters_name_each_key(lead, filter, errors):
    with pytest.raises(RecordError) as caught:
        record_find(data_type=lead, filter=filter)
    assert caught.value.fields == errors


@pytest.mark.parametrize("order_by", ["rank", "-tags", "meta"])
def test_bad_order_by_is_refused(lead, order_by):
    with pytest.raises(RecordError) as caught:
        record_find(data_type=lead, order_by=order_by)
    assert set(caught.value.fields) == {"order_by"}
