"""find_records: config validation and run."""
import re

import pytest

from datastore.services import record_create
from workflows.actions import registry

action = registry.get("find_records")


def test_config_limits_are_checked():
    assert set(action.validate_definition({})) == {"type"}
    assert "limit" in action.validate_definition({"type": "x", "limit": 0})
    assert "limit" in action.validate_definition({"type": "x", "limit": 10**6})


@pytest.mark.django_db
def test_run_filters_orders_limits_and_counts_all_matches(invoices, make_context):
    for amount in (30, 10, 20, 5):
        record_create(data_type=invoices, fields={"amount": amount, "customer": "acme" if amount > 5 else "other"})
    output = action.run(
        config={"type": "invoice", "filter": {"customer": "acme"}, "order_by": "-amount", "limit": 2},
        context=make_context(),
    )
    assert [r["amount"] for r in output["records"]] == [30, 20]
    assert output["count"] == 3


@pytest.fixture
def fresh_process():
    """A worker that has not read any data type yet."""
    from datastore import selectors

    selectors._recent_types.clear()


def _search(make_context, **config):
    return action.run(config={"type": "invoice", "filter": {}, "order_by": "", "limit": 2, **config},
                      context=make_context())


@pytest.mark.django_db
@pytest.mark.parametrize(("matches", "cold", "warm"), [(0, 2, 2), (2, 2, 1), (3, 3, 2)])
def test_a_search_reads_the_type_only_when_its_rows_cannot_vouch_for_it(
    invoices, make_context, django_assert_num_queries, fresh_process, matches, cold, warm
):
    """Cold: the type, then the records with one row more than the limit (a COUNT only when that row
    exists). Warm: the rows found carry their type's version, so the type is read again only when none came back."""
    for amount in range(matches):
        record_create(data_type=invoices, fields={"amount": amount, "customer": "acme"})
    for queries in (cold, warm):
        with django_assert_num_queries(queries):
            output = _search(make_context, filter={"customer": "acme"})
        assert output["count"] == matches
        assert len(output["records"]) == min(matches, 2)


@pytest.mark.django_db
def test_a_search_sees_a_type_changed_by_another_process(invoices, make_context, fresh_process):
    """A field added since this process read the type can be searched at once; a removed one is an error."""
    from django.utils import timezone

    from config.errors import ActionError
    from datastore.models import DataType

    record_create(data_type=invoices, fields={"amount": 5, "customer": "acme"})
    assert _search(make_context)["count"] == 1  # this process now holds a copy of the type
    # Another process adds a field (an UPDATE this process's copy knows nothing of).
    fields = [*invoices.fields, {"name": "region", "type": "text"}]
    DataType.objects.filter(pk=invoices.pk).update(fields=fields, modified=timezone.now())
    record_create(data_type=DataType.objects.get(pk=invoices.pk), fields={"amount": 7, "region": "eu"})
    output = _search(make_context, filter={"region": "eu"})
    assert [record["amount"] for record in output["records"]] == [7]
    assert "region" in output["records"][0]
    # ... and then removes it again.
    DataType.objects.filter(pk=invoices.pk).update(fields=fields[:-1], modified=timezone.now())
    with pytest.raises(ActionError, match="region"):
        _search(make_context, filter={"region": "eu"})


@pytest.mark.django_db
def test_searches_of_one_shape_each_find_their_own_records(invoices, make_context, fresh_process):
    """The statement of a shape is compiled once and reused: each search still gets its own values' rows,
    in its own order, and a list of another length or a new lookup is a shape of its own."""
    from datastore import selectors

    selectors._statements.clear()
    for amount, customer in ((30, "acme"), (10, "acme"), (20, "globex"), (5, "initech")):
        record_create(data_type=invoices, fields={"amount": amount, "customer": customer})
    amounts = {customer: [r["amount"] for r in _search(make_context, filter={"customer": customer},
                                                       order_by="-amount", limit=5)["records"]]
               for customer in ("acme", "globex", "initech", "nobody", "acme")}
    assert amounts == {"acme": [30, 10], "globex": [20], "initech": [5], "nobody": []}
    assert len(selectors._statements) == 1
    by_list = [[r["amount"] for r in _search(make_context, filter={"customer__in": names}, order_by="amount",
                                             limit=5)["records"]]
               for names in (["globex", "initech"], ["acme"], ["acme", "globex", "initech"])]
    assert by_list == [[5, 20], [10, 30], [5, 10, 20, 30]]
    over = _search(make_context, filter={"amount__gte": 10}, order_by="amount", limit=2)
    assert [r["amount"] for r in over["records"]] == [10, 20] and over["count"] == 3
    assert len(selectors._statements) == 5 and all(selectors._statements.values())  # none fell back


@pytest.mark.django_db
def test_two_types_searched_with_the_same_filter_each_find_their_own_records(invoices, make_context,
                                                                            fresh_process):
    """Each type's statement has its own id written in (bench O40), never another type's or a filter's value:
    two types with the same fields, searched with the same filter, each find only their own records."""
    from datastore import selectors
    from datastore.services import data_type_create

    quotes = data_type_create(name="quote", fields=[{"name": "amount", "type": "number", "required": True},
                                                    {"name": "customer", "type": "text"}])
    for data_type, amount in ((invoices, 30), (invoices, 10), (quotes, 99)):
        record_create(data_type=data_type, fields={"amount": amount, "customer": "acme"})
    selectors._statements.clear()
    found = {name: sorted(r["amount"] for r in _search(make_context, type=name, filter={"customer": "acme"},
                                                       limit=5)["records"])
             for name in ("invoice", "quote", "invoice", "quote")}
    assert found == {"invoice": [10, 30], "quote": [99]}
    statements = list(selectors._statements.values())
    assert len(statements) == 2 and all(statement.written == 1 for statement in statements)
    written = [re.findall(r'"data_type_id" = (\d+)', statement.sql) for statement in statements]
    assert sorted(written) == sorted([[str(invoices.pk)], [str(quotes.pk)]])


@pytest.mark.django_db
def test_a_cached_search_keeps_its_own_limit_order_and_emptiness(invoices, make_context, fresh_process):
    """The same filter with another limit or order is a statement of its own; an empty list matches nothing."""
    for amount in (30, 10, 20, 5):
        record_create(data_type=invoices, fields={"amount": amount, "customer": "acme"})
    acme = {"customer": "acme"}
    for limit, order_by, amounts in ((2, "amount", [5, 10]), (5, "amount", [5, 10, 20, 30]),
                                     (2, "amount", [5, 10]), (3, "-amount", [30, 20, 10])):
        output = _search(make_context, filter=acme, order_by=order_by, limit=limit)
        assert [r["amount"] for r in output["records"]] == amounts and output["count"] == 4
    assert _search(make_context, filter={"customer__in": []}) == {"records": [], "count": 0}


@pytest.mark.django_db
def test_searches_for_fields_equal_to_values_find_what_the_orm_finds(invoices, make_context, fresh_process,
                                                                      monkeypatch):
    """Fields equal to values take a WHERE clause compiled once per type and fields (PostgreSQL): each search
    still finds exactly the records the ORM's own query finds, whatever its values hold, and a shape seen
    before builds no queryset at all (bench O33); other lookups and other databases compile as before."""
    from django.db import connection

    from config.errors import ActionError
    from datastore import selectors

    selectors._exact_clauses.clear()
    for amount, customer, status in ((30, "l'été \"quoted\" ✓", "paid"), (10, "acme", "paid"), (10.5, "acme", "due"),
                                     (20, "acme", None), (5, "100", "paid")):
        record_create(data_type=invoices, fields={"amount": amount, "customer": customer, "status": status})
    searches = [
        {"customer": "l'été \"quoted\" ✓"}, {"customer": "acme"}, {"customer": "nobody"}, {"customer": "100"},
        {"amount": 10}, {"amount": 10.5}, {"amount": 10.0}, {"customer__exact": "acme", "status": "paid"},
        {"customer": "acme", "customer__exact": "acme"}, {"status": "paid", "customer": "acme"},
    ]

    def ids_found(filter):
        return sorted(record["id"] for record in _search(make_context, filter=filter, limit=10)["records"])

    def orm_ids(filter):
        return sorted(str(record.pk) for record in selectors.record_find(data_type=invoices, filter=filter))

    expected = [orm_ids(filter) for filter in searches]
    assert [ids_found(filter) for filter in searches] == expected
    assert [len(ids) for ids in expected] == [1, 3, 0, 1, 1, 1, 1, 1, 3, 1]
    # "No value" and a value of the wrong type take filter_q's own conditions and errors.
    assert ids_found({"status": None}) == orm_ids({"status": None}) == orm_ids_of(invoices, amount=20)
    with pytest.raises(ActionError, match="Invalid filter") as failed:
        _search(make_context, filter={"amount": "ten"})
    assert set(failed.value.extra["fields"]) == {"filter.amount"}
    if connection.vendor == "postgresql":
        shapes = {("customer",), ("amount",), ("customer", "status"), ("customer", "customer"), ("status", "customer")}
        assert {names for _, _, names in selectors._exact_clauses} == shapes
        assert all(selectors._exact_clauses.values())
        # Every shape is known now: new values find their records without the ORM building a query.
        monkeypatch.setattr(selectors, "record_find", lambda **kwargs: pytest.fail(f"a queryset was built: {kwargs}"))
        assert ids_found({"customer": "l'été \"quoted\" ✓"}) == expected[0]
        assert ids_found({"status": "due", "customer": "acme"}) == orm_ids_of(invoices, amount=10.5)
    else:
        assert not selectors._exact_clauses


def orm_ids_of(data_type, **data):
    from datastore.models import Record

    return sorted(str(pk) for pk in Record.objects.filter(
        data_type=data_type, **{f"data__{key}": value for key, value in data.items()}).values_list("pk", flat=True))
