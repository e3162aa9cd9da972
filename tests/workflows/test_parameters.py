"""Workflow parameters: coercion from JSON, forms and query strings, defaults, required ones, records, Detect data."""
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.http import QueryDict

from config.errors import ParameterError
from datastore.selectors import record_to_dict
from datastore.services import data_type_create, record_create
from workflows.parameters import coerce_params, infer_parameters


@dataclass(frozen=True)
class Param:
    """Stands in for workflows.definition.Parameter: coerce_params needs only these attributes."""

    name: str
    type: str
    list: bool = False
    required: bool = False
    default: Any = None
    description: str = ""


STRIPE_LIKE = [
    Param("type", "text", required=True),
    Param("amount", "number", default=0),
    Param("quantity", "integer"),
    Param("paid", "boolean"),
    Param("due_on", "date"),
    Param("at", "datetime"),
    Param("email", "email"),
    Param("site", "url"),
    Param("meta", "object"),
    Param("receipt", "file"),
    Param("tags", "text", list=True),
]


def test_json_values_are_coerced_to_canonical_values():
    params = coerce_params(
        STRIPE_LIKE,
        {
            "type": "12345",
            "amount": "19.99",
            "quantity": 3,
            "paid": True,
            "due_on": date(2026, 12, 1),
            "at": datetime(2026, 11, 26, 13, 20, tzinfo=UTC),
            "email": "Buyer@Example.COM",
            "site": "https://shop.example.com",
            "meta": {"order": [1, 2]},
            "receipt": "https://files.example.com/r.pdf",
            "tags": ["a", 2],
        },
    )
    assert params == {
        "type": "12345",
        "amount": 19.99,
        "quantity": 3,
        "paid": True,
        "due_on": "2026-12-01",
        "at": "2026-11-26T13:20:00Z",
        "email": "Buyer@example.com",
        "site": "https://shop.example.com",
        "meta": {"order": [1, 2]},
        "receipt": "https://files.example.com/r.pdf",
        "tags": ["a", "2"],
    }
    assert json.loads(json.dumps(params)) == params


def test_every_bad_value_and_missing_required_parameter_is_reported_at_once():
    with pytest.raises(ParameterError) as caught:
        coerce_params(
            STRIPE_LIKE,
            {"amount": "abc", "quantity": 1.5, "paid": "maybe", "due_on": "soon", "email": "nope", "tags": "a"},
        )
    assert caught.value.message == "Invalid parameters."
    assert caught.value.fields == {
        "type": "required",
        "amount": "expected a number, got 'abc'",
        "quantity": "expected an integer, got 1.5",
        "paid": "expected a boolean, got 'maybe'",
        "due_on": "expected a date (YYYY-MM-DD), got 'soon'",
        "email": "expected an email address, got 'nope'",
        "tags": "expected a list, got 'a'",
    }


def test_defaults_fill_missing_optional_parameters_and_unknown_keys_are_ignored():
    params = coerce_params(STRIPE_LIKE, {"type": "invoice.paid", "livemode": False, "amount": None})
    assert params["amount"] == 0
    assert params["quantity"] is None
    assert params["tags"] is None
    assert "livemode" not in params
    assert set(params) == {p.name for p in STRIPE_LIKE}


@pytest.mark.parametrize("value", [None, "", []])
def test_a_required_parameter_given_empty_is_missing(value):
    parameters = [Param("ids", "integer", list=True, required=True), Param("name", "text", required=True)]
    with pytest.raises(ParameterError) as caught:
        coerce_params(parameters, {"ids": value, "name": value if value != [] else ""})
    assert caught.value.fields == {"ids": "required", "name": "required"}


def test_a_default_applies_to_an_empty_value_and_is_coerced_too():
    parameters = [Param("when", "date", default="2026-01-01"), Param("limit", "integer", default="10")]
    assert coerce_params(parameters, {"when": ""}) == {"when": "2026-01-01", "limit": 10}


def test_form_values_are_strings_parsed_to_their_types():
    form = QueryDict(
        "type=refund&amount=12.50&paid=on&quantity=2&tags=a&tags=b&meta=%7B%22k%22%3A1%7D&due_on=&at=2026-11-26T13:20:00Z"
    )
    params = coerce_params(STRIPE_LIKE, form, source="form")
    assert params["amount"] == 12.5
    assert params["paid"] is True
    assert params["quantity"] == 2
    assert params["tags"] == ["a", "b"]
    assert params["meta"] == {"k": 1}
    assert params["due_on"] is None
    assert params["at"] == "2026-11-26T13:20:00Z"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ids=1&ids=2&ids=3", [1, 2, 3]),
        ("ids=1,2,3", [1, 2, 3]),
        ("ids=%5B1%2C2%2C3%5D", [1, 2, 3]),
        ("ids=", []),
        ("", None),
    ],
)
def test_query_lists_come_as_repeated_keys_commas_or_a_json_array(query, expected):
    params = coerce_params([Param("ids", "integer", list=True), Param("flag", "boolean")], QueryDict(query), source="query")
    assert params["ids"] == expected


def test_query_list_items_that_do_not_coerce_are_reported():
    with pytest.raises(ParameterError) as caught:
        coerce_params([Param("ids", "integer", list=True)], QueryDict("ids=1&ids=two"), source="query")
    assert caught.value.fields == {"ids": "item 1: expected an integer, got 'two'"}


@pytest.mark.django_db
def test_record_parameters_are_resolved_to_records():
    lead = data_type_create(name="lead", fields=[{"name": "email", "type": "email"}])
    company = data_type_create(name="company", fields=[])
    ada = record_create(data_type=lead, fields={"email": "ada@example.com"})
    bob = record_create(data_type=lead, fields={"email": "bob@example.com"})
    acme = record_create(data_type=company, fields={})
    parameters = [Param("lead", "record:lead", required=True), Param("team", "record:lead", list=True)]

    params = coerce_params(parameters, {"lead": str(ada.pk), "team": [str(bob.pk), str(ada.pk)]})

    assert params["lead"] == record_to_dict(ada)
    assert [member["email"] for member in params["team"]] == ["bob@example.com", "ada@example.com"]
    with pytest.raises(ParameterError) as caught:
        coerce_params(parameters, {"lead": str(acme.pk), "team": "x"})
    assert caught.value.fields == {
        "lead": f"no lead record with id '{acme.pk}'",
        "team": "expected a list, got 'x'",
    }


@pytest.mark.django_db
def test_many_sets_share_their_record_reads_and_keep_their_own_outcomes(monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from workflows import parameters as module

    lead = data_type_create(name="lead", fields=[{"name": "n", "type": "integer"}])
    leads = [record_create(data_type=lead, fields={"n": n}) for n in range(5)]
    ids = [str(record.pk) for record in leads]
    gone = "00000000-0000-0000-0000-000000000000"
    parameters = [Param("lead", "record:lead", required=True), Param("team", "record:lead", list=True)]
    sets = [{"lead": ids[0], "team": ids[1:4]}, {"lead": gone, "team": [ids[4]]}, {"lead": ids[4]}, {"team": "x"}]
    monkeypatch.setattr(module, "RECORDS_PER_QUERY", 2)  # ids are read two to a query here

    with CaptureQueriesContext(connection) as captured:
        first, second, third, fourth = module.coerce_params_many(parameters, sets)

    # lead: 3 distinct ids (2 queries); team: 4 distinct ids (2 queries); whatever the number of sets.
    assert len(captured) == 4
    assert first["lead"] == record_to_dict(leads[0])
    assert [member["n"] for member in first["team"]] == [1, 2, 3]
    assert isinstance(second, ParameterError) and second.fields == {"lead": f"no lead record with id '{gone}'"}
    assert third["lead"] == record_to_dict(leads[4]) and third["team"] is None
    assert isinstance(fourth, ParameterError) and set(fourth.fields) == {"lead", "team"}
    # Each set has its own dicts: changing one run's parameters cannot change another's.
    assert third["lead"] is not module.coerce_params_many(parameters, [sets[2]])[0]["lead"]


@pytest.mark.django_db
def test_record_parameters_from_a_query_string():
    lead = data_type_create(name="lead", fields=[])
    ada = record_create(data_type=lead, fields={})
    params = coerce_params([Param("lead", "record:lead")], QueryDict(f"lead={ada.pk}"), source="query")
    assert params["lead"]["id"] == str(ada.pk)


def test_infer_parameters_proposes_types_from_a_sample_body():
    body = {
        "type": "invoice.paid",
        "zip": "02134",
        "email": "ada@example.com",
        "site": "https://example.com",
        "due_on": "2026-12-01",
        "at": "2026-11-26T13:20:00Z",
        "count": 3,
        "amount": 9.5,
        "paid": False,
        "tags": ["a", "b"],
        "ids": [1, 2.5],
        "items": [{"sku": "x"}],
        "empty": [],
        "data": {"object": {}},
        "nothing": None,
        "customerId": "cus_1",
    }
    assert infer_parameters(body) == [
        {"name": "type", "type": "text", "list": False},
        {"name": "zip", "type": "text", "list": False},
        {"name": "email", "type": "email", "list": False},
        {"name": "site", "type": "url", "list": False},
        {"name": "due_on", "type": "date", "list": False},
        {"name": "at", "type": "datetime", "list": False},
        {"name": "count", "type": "integer", "list": False},
        {"name": "amount", "type": "number", "list": False},
        {"name": "paid", "type": "boolean", "list": False},
        {"name": "tags", "type": "text", "list": True},
        {"name": "ids", "type": "number", "list": True},
        {"name": "items", "type": "object", "list": True},
        {"name": "empty", "type": "text", "list": True},
        {"name": "data", "type": "object", "list": False},
        {"name": "nothing", "type": "text", "list": False},
    ]
    assert infer_parameters([1, 2]) == []
