"""find_records: config validation and run."""
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


@pytest.mark.django_db
@pytest.mark.parametrize(("matches", "queries"), [(0, 2), (2, 2), (3, 3)])
def test_the_count_costs_a_query_only_when_matches_pass_the_limit(invoices, make_context, django_assert_num_queries,
                                                                  matches, queries):
    """The type, then the records with one row more than the limit: a COUNT only when that row exists."""
    for amount in range(matches):
        record_create(data_type=invoices, fields={"amount": amount, "customer": "acme"})
    with django_assert_num_queries(queries):
        output = action.run(config={"type": "invoice", "filter": {"customer": "acme"}, "order_by": "", "limit": 2},
                            context=make_context())
    assert output["count"] == matches
    assert len(output["records"]) == min(matches, 2)
