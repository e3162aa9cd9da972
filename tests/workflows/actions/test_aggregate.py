"""aggregate: config validation, each function over the test database, groups, filters and refusals."""
from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import ActionError
from datastore.models import Record
from datastore.services import data_type_create, record_create
from workflows.actions import registry

action = registry.get("aggregate")


def run(make_context, **config):
    """The action's output for a config as a definition would give it (defaults filled in by the schema)."""
    return action.run(config=action.validate_runtime({"type": "sale", **config}), context=make_context())


@pytest.fixture
def sales(db):
    """Six sales across three categories (one without), with numbers, integers, dates and flags."""
    data_type = data_type_create(name="sale", fields=[
        {"name": "amount", "type": "number"},
        {"name": "quantity", "type": "integer"},
        {"name": "category", "type": "text"},
        {"name": "status", "type": "text"},
        {"name": "paid", "type": "boolean"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "datetime"},
        {"name": "seats", "type": "integer"},
        {"name": "tags", "type": "text", "list": True},
        {"name": "meta", "type": "object"},
    ])
    rows = [
        {"amount": 0.1, "quantity": 2, "category": "books", "status": "paid", "paid": True, "day": "2025-03-02",
         "at": "2025-03-02T10:00:00Z", "seats": 9},
        {"amount": 0.2, "quantity": 3, "category": "books", "status": "paid", "paid": True, "day": "2025-03-01",
         "at": "2025-03-02T10:00:00.500000Z", "seats": 10},
        {"amount": 19.99, "quantity": 1, "category": "music", "status": "paid", "paid": False, "day": "2025-03-05",
         "at": "2025-03-01T09:00:00Z", "seats": 10},
        {"amount": 5, "quantity": 4, "category": "music", "status": "refunded", "paid": False},
        {"amount": 100, "quantity": 10, "status": "paid", "paid": True, "seats": 9},
        {"quantity": 7, "category": "games", "status": "paid"},
    ]
    for row in rows:
        record_create(data_type=data_type, fields=row)
    return data_type


def test_config_needs_a_field_for_everything_but_count():
    """sum/avg/min/max without a field, or an unknown function, are refused when the workflow is saved."""
    assert action.validate_definition({"type": "sale"}) == {}
    assert action.validate_definition({"type": "sale", "function": "sum"}) == {"field": "sum needs a field"}
    assert "function" in action.validate_definition({"type": "sale", "function": "median", "field": "amount"})
    assert action.validate_definition({"type": "sale", "function": "{{ params.fn }}", "field": "amount"}) == {}
    with pytest.raises(ActionError, match="field: avg needs a field"):
        action.validate_runtime({"type": "sale", "function": "avg"})


@pytest.mark.django_db
def test_count_counts_records_or_the_records_that_have_the_field(sales, make_context):
    assert run(make_context) == {"value": 6}
    assert run(make_context, field="amount") == {"value": 5}
    assert run(make_context, filter={"status": "paid"}) == {"value": 5}


@pytest.mark.django_db
def test_sum_avg_min_max_of_numbers_come_back_as_people_expect(sales, make_context):
    """0.1 + 0.2 is 0.3, an integer field sums to an integer, a whole average has no ".0"."""
    paid = {"status": "paid", "category": "books"}
    assert run(make_context, function="sum", field="amount", filter=paid) == {"value": 0.3}
    assert run(make_context, function="sum", field="amount") == {"value": 125.29}
    total = run(make_context, function="sum", field="quantity")["value"]
    assert total == 27 and isinstance(total, int)
    assert run(make_context, function="avg", field="quantity", filter={"status": "paid"}) == {"value": 4.6}
    assert run(make_context, function="avg", field="seats") == {"value": 9.5}
    assert run(make_context, function="avg", field="quantity", filter={"category": "books"}) == {"value": 2.5}
    assert run(make_context, function="avg", field="amount", filter={"category": "music"}) == {"value": 12.495}
    assert run(make_context, function="min", field="amount") == {"value": 0.1}
    assert run(make_context, function="max", field="amount") == {"value": 100}
    assert run(make_context, function="max", field="quantity") == {"value": 10}


@pytest.mark.django_db
def test_min_and_max_of_dates_datetimes_and_text_follow_their_order(sales, make_context):
    """Datetimes compare in time order even where one has fractions of a second and the other none."""
    assert run(make_context, function="min", field="day") == {"value": "2025-03-01"}
    assert run(make_context, function="max", field="day") == {"value": "2025-03-05"}
    assert run(make_context, function="min", field="at") == {"value": "2025-03-01T09:00:00Z"}
    assert run(make_context, function="max", field="at") == {"value": "2025-03-02T10:00:00.500000Z"}
    assert run(make_context, function="max", field="category") == {"value": "music"}


@pytest.mark.django_db
def test_no_matching_records_sum_to_zero_and_have_no_average(sales, make_context):
    nothing = {"status": "lost"}
    assert run(make_context, filter=nothing) == {"value": 0}
    assert run(make_context, function="sum", field="amount", filter=nothing) == {"value": 0}
    assert run(make_context, function="avg", field="amount", filter=nothing) == {"value": None}
    assert run(make_context, function="max", field="at", filter=nothing) == {"value": None}


@pytest.mark.django_db
def test_group_by_gives_one_figure_per_value_in_key_order_with_the_missing_last(sales, make_context):
    output = run(make_context, function="sum", field="amount", group_by="category", filter={"status": "paid"})
    assert output == {"groups": [
        {"key": "books", "value": 0.3},
        {"key": "games", "value": 0},
        {"key": "music", "value": 19.99},
        {"key": None, "value": 100},
    ]}
    assert run(make_context, group_by="status") == {"groups": [
        {"key": "paid", "value": 5}, {"key": "refunded", "value": 1}]}


@pytest.mark.django_db
def test_group_keys_keep_their_type_and_numeric_order(sales, make_context):
    """Integer keys sort as numbers (9 before 10), boolean keys are true/false on every database."""
    assert run(make_context, group_by="seats") == {"groups": [
        {"key": 9, "value": 2}, {"key": 10, "value": 2}, {"key": None, "value": 2}]}
    assert run(make_context, function="avg", field="quantity", group_by="paid") == {"groups": [
        {"key": False, "value": 2.5}, {"key": True, "value": 5}, {"key": None, "value": 7}]}


@pytest.mark.django_db
def test_filters_on_created_narrow_the_records(sales, make_context):
    """The nightly pattern: only records created in the window count."""
    old = Record.objects.filter(data_type=sales, data__category="games").get()
    Record.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=3))
    # A datetime, as {{ now | add_days(-1) }} renders, or its ISO text: both compare as instants.
    since = timezone.now() - timedelta(days=1)
    assert run(make_context, filter={"created__gte": since}) == {"value": 5}
    assert run(make_context, function="sum", field="quantity", filter={"created__lt": since.isoformat()}) == {
        "value": 7}


@pytest.mark.django_db
def test_the_figure_is_one_database_query_not_a_python_loop(sales, make_context, django_assert_num_queries):
    # One query for the data type, one for the aggregate: the records are never loaded.
    with django_assert_num_queries(2):
        run(make_context, function="avg", field="amount", group_by="category")


@pytest.mark.django_db
def test_wrong_fields_fail_the_step_naming_the_problem(sales, make_context):
    with pytest.raises(ActionError, match="sum needs a number or integer field; 'category' is text"):
        run(make_context, function="sum", field="category")
    with pytest.raises(ActionError, match="Unknown field 'price'"):
        run(make_context, function="max", field="price")
    with pytest.raises(ActionError, match="min needs a number, integer, text, date or datetime field"):
        run(make_context, function="min", field="paid")
    with pytest.raises(ActionError, match="Cannot group by 'tags', a list of text field"):
        run(make_context, group_by="tags")
    with pytest.raises(ActionError, match="Cannot group by 'meta'"):
        run(make_context, group_by="meta")
    with pytest.raises(ActionError, match="Invalid filter"):
        run(make_context, filter={"amount__near": 3})
    with pytest.raises(ActionError, match="No data type named 'nope'"):
        action.run(config=action.validate_runtime({"type": "nope"}), context=make_context())


@pytest.mark.django_db
def test_too_many_groups_fail_rather_than_flood_the_run(sales, make_context, settings):
    settings.ENGINE_ROOM_AGGREGATE_MAX_GROUPS = 2
    with pytest.raises(ActionError, match="more than 2 groups"):
        run(make_context, group_by="category")
    assert len(run(make_context, group_by="status")["groups"]) == 2


@pytest.mark.django_db
def test_in_a_workflow_the_output_feeds_later_steps(sales, make_workflow, run_now):
    """The engine renders the config, runs the aggregate and hands {value} to the next step."""
    workflow = make_workflow("totals", parameters=[{"name": "status", "type": "text"}], steps=[
        {"key": "total", "action": "aggregate",
         "config": {"type": "sale", "filter": {"status": "{{ params.status }}"}, "function": "sum", "field": "amount"}},
        {"key": "say", "action": "set_values", "config": {"values": {"text": "Total {{ steps.total.value }}"}}},
    ])
    run_result = run_now(workflow, {"status": "refunded"})
    assert run_result.status == "succeeded", run_result.error
    steps = {step.key: step for step in run_result.steps.all()}
    assert steps["total"].output == {"value": 5}
    assert steps["say"].output == {"text": "Total 5"}
    assert run_result.wu >= 0.1 + 0.05

