"""Field types: canonical values, refusals that name the expected type, form/query strings, declarations."""
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from datastore.types import CoercionError, coerce_value, validate_field_spec

LEAD_ID = "5f0c6f3e-8a4b-4c1e-9d2a-0b7e6f1a2c3d"


def coerce(type_name, value, *, list=False, source="json"):
    return coerce_value({"name": "f", "type": type_name, "list": list}, value, source=source)


@pytest.mark.parametrize(
    ("type_name", "value", "expected"),
    [
        ("text", "12345", "12345"),
        ("text", "  padded  ", "  padded  "),
        ("text", "", ""),
        ("text", 12, "12"),
        ("text", 2.5, "2.5"),
        ("text", True, "true"),
        ("text", date(2026, 11, 26), "2026-11-26"),
        ("number", 3, 3),
        ("number", 2.5, 2.5),
        ("number", "2.5", 2.5),
        ("number", "-7", -7),
        ("number", Decimal("4.0"), 4),
        ("integer", 42, 42),
        ("integer", 3.0, 3),
        ("integer", "17", 17),
        ("boolean", True, True),
        ("boolean", False, False),
        ("boolean", "yes", True),
        ("boolean", 0, False),
        ("date", "2026-11-26", "2026-11-26"),
        ("date", date(2026, 2, 1), "2026-02-01"),
        ("date", datetime(2026, 2, 1, 23, 59, tzinfo=UTC), "2026-02-01"),
        ("date", "2026-02-01T10:00:00Z", "2026-02-01"),
        ("datetime", "2026-11-26T13:20:00Z", "2026-11-26T13:20:00Z"),
        ("datetime", "2026-11-26T14:20:00+01:00", "2026-11-26T13:20:00Z"),
        ("datetime", "2026-11-26 13:20", "2026-11-26T13:20:00Z"),
        ("datetime", "2026-11-26T13:20:00.250Z", "2026-11-26T13:20:00.250000Z"),
        ("datetime", datetime(2026, 11, 26, 8, 20, tzinfo=timezone(timedelta(hours=-5))), "2026-11-26T13:20:00Z"),
        ("datetime", datetime(2026, 11, 26, 13, 20), "2026-11-26T13:20:00Z"),
        ("datetime", date(2026, 11, 26), "2026-11-26T00:00:00Z"),
        ("email", "Ada@Example.COM", "Ada@example.com"),
        ("email", " ada@example.com ", "ada@example.com"),
        ("url", "https://example.com/a?b=1", "https://example.com/a?b=1"),
        ("object", {"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}),
        ("object", "just text", "just text"),
        ("object", {"at": datetime(2026, 1, 1, tzinfo=UTC)}, {"at": "2026-01-01T00:00:00Z"}),
        ("file", "https://cdn.example.com/a.pdf", "https://cdn.example.com/a.pdf"),
        (
            "file",
            {"url": "https://cdn.example.com/a.pdf", "size": 10},
            {"name": "a.pdf", "url": "https://cdn.example.com/a.pdf", "size": 10, "content_type": None},
        ),
        ("record:lead", LEAD_ID.upper(), LEAD_ID),
        ("record:lead", uuid.UUID(LEAD_ID), LEAD_ID),
        ("record:lead", {"id": LEAD_ID, "type": "lead", "name": "Ada"}, LEAD_ID),
    ],
)
def test_good_values_become_canonical(type_name, value, expected):
    result = coerce(type_name, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("type_name", "value", "message"),
    [
        ("text", {"a": 1}, "expected text, got an object"),
        ("text", ["a"], "expected text, got a list"),
        ("number", "abc", "expected a number, got 'abc'"),
        ("number", True, "expected a number, got true"),
        ("number", "nan", "expected a number, got 'nan'"),
        ("number", "1_000", "expected a number, got '1_000'"),
        ("integer", 4.5, "expected an integer, got 4.5"),
        ("integer", "12.5", "expected an integer, got '12.5'"),
        ("boolean", "maybe", "expected a boolean, got 'maybe'"),
        ("boolean", 2, "expected a boolean, got 2"),
        ("date", "26/11/2026", "expected a date (YYYY-MM-DD), got '26/11/2026'"),
        ("date", "2026-02-30", "expected a date (YYYY-MM-DD), got '2026-02-30'"),
        ("datetime", "tomorrow", "expected a datetime (ISO 8601), got 'tomorrow'"),
        ("datetime", 1764163200, "expected a datetime (ISO 8601), got 1764163200"),
        ("email", "not-an-email", "expected an email address, got 'not-an-email'"),
        ("url", "example dot com", "expected a URL, got 'example dot com'"),
        ("url", "javascript:alert(1)", "expected a URL, got 'javascript:alert(1)'"),
        ("object", float("inf"), "expected JSON, got inf"),
        ("file", {"name": "a.pdf"}, "expected a file"),
        ("file", {"url": "https://x.example/a", "owner": "me"}, "expected a file"),
        ("record:lead", "42", "expected a lead id, got '42'"),
        ("record:lead", {"id": LEAD_ID, "type": "company"}, "expected a lead id, got a company record"),
    ],
)
def test_bad_values_are_refused_naming_the_expected_type(type_name, value, message):
    with pytest.raises(CoercionError) as caught:
        coerce(type_name, value)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("type_name", ["number", "integer", "boolean", "date", "datetime", "email", "url", "record:lead"])
def test_an_empty_string_means_no_value_except_for_text(type_name):
    assert coerce(type_name, "") is None
    assert coerce(type_name, None) is None
    assert coerce("text", "") == ""


def test_lists_coerce_every_item_and_name_the_bad_one():
    assert coerce("integer", [1, "2", 3.0], list=True) == [1, 2, 3]
    with pytest.raises(CoercionError, match=r"^item 1: expected an integer, got 'x'$"):
        coerce("integer", [1, "x"], list=True)
    with pytest.raises(CoercionError, match=r"^item 0: expected an integer, got null$"):
        coerce("integer", [None], list=True)
    with pytest.raises(CoercionError, match="^expected a list, got 'a,b'$"):
        coerce("text", "a,b", list=True)


@pytest.mark.parametrize("source", ["form", "query"])
@pytest.mark.parametrize(
    ("type_name", "raw", "expected"),
    [
        ("boolean", "true", True),
        ("boolean", "off", False),
        ("boolean", "1", True),
        ("boolean", "No", False),
        ("integer", "42", 42),
        ("number", "4.25", 4.25),
        ("object", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("object", "[1, 2]", [1, 2]),
        ("text", "12345", "12345"),
        ("file", '{"url": "https://x.example/a.txt"}', {"name": "a.txt", "url": "https://x.example/a.txt", "size": None, "content_type": None}),
    ],
)
def test_form_and_query_strings_are_parsed(source, type_name, raw, expected):
    assert coerce(type_name, raw, source=source) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["1", "2", "3"], [1, 2, 3]),  # repeated keys, as QueryDict.getlist gives them
        (["1,2, 3"], [1, 2, 3]),
        ("[1, 2, 3]", [1, 2, 3]),
        ("1,2,3", [1, 2, 3]),
        ([""], []),
        ("", []),
    ],
)
def test_form_lists_come_as_repeated_keys_json_arrays_or_commas(raw, expected):
    assert coerce("integer", raw, list=True, source="form") == expected


def test_form_object_that_is_not_json_is_refused():
    with pytest.raises(CoercionError, match="^expected JSON, got 'hello'$"):
        coerce("object", "hello", source="form")
    with pytest.raises(CoercionError, match="^expected a list"):
        coerce("integer", "[1, 2", list=True, source="query")


def test_an_upload_is_kept_in_storage_and_described(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("report.csv", b"a,b\n1,2\n", content_type="text/csv")
    value = coerce("file", upload, source="form")
    assert value["name"] == "report.csv"
    assert value["size"] == 8
    assert value["content_type"] == "text/csv"
    stored = value["url"].split("/media/", 1)[1]
    with default_storage.open(stored) as kept:
        assert kept.read() == b"a,b\n1,2\n"


def test_validate_field_spec_accepts_every_type():
    for type_name in ["text", "number", "integer", "boolean", "date", "datetime", "email", "url", "object", "file", "record:lead"]:
        assert validate_field_spec({"name": "f", "type": type_name, "list": True, "required": False}) == {}


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        ({"name": "Score", "type": "integer"}, {"name"}),
        ({"name": "1st", "type": "integer"}, {"name"}),
        ({"name": "x" * 64, "type": "integer"}, {"name"}),
        ({"name": "score\n", "type": "integer"}, {"name"}),
        ({"name": "score", "type": "int"}, {"type"}),
        ({"name": "score", "type": "record:"}, {"type"}),
        ({"name": "score", "type": "record:Lead"}, {"type"}),
        ({"name": "score", "type": "integer", "list": "yes", "required": 1}, {"list", "required"}),
        ({"type": "integer", "description": 5}, {"name", "description"}),
    ],
)
def test_validate_field_spec_names_each_bad_key(spec, errors):
    found = validate_field_spec(spec)
    assert set(found) == errors
    if "type" in errors:
        assert "unknown type" in found["type"]
