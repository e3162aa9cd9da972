"""The editor's forms: generated from each action's Config schema, assembled back into the same definition."""
import json
from pathlib import Path

import pytest
from rest_framework.fields import empty

from workflows import editor
from workflows.actions import registry

DEMO = json.loads((Path(__file__).parents[2] / "workflows/bundles/demo.json").read_text())


def fields_of(action_type):
    return {config_field.key: config_field for config_field in editor.config_fields(action_type)}


@pytest.mark.parametrize("action", registry.all(), ids=lambda action: action.type)
def test_every_config_key_gets_one_labelled_field_with_the_schema_help(action):
    """The form shows exactly the schema's keys, in its order, with its required flags and help texts."""
    schema = action.Config().fields
    fields = editor.config_fields(action.type)
    assert [config_field.key for config_field in fields] == list(schema)
    for config_field in fields:
        assert config_field.label
        assert config_field.required == schema[config_field.key].required
        assert config_field.help_text == str(schema[config_field.key].help_text or "")
        if schema[config_field.key].default is not empty and not callable(schema[config_field.key].default):
            assert config_field.default == schema[config_field.key].default


def test_field_kinds_follow_the_schema_field_types():
    """Choices become a select, numbers a number box, dicts a name/value table, bodies a text area."""
    http = fields_of("http_request")
    assert http["method"].kind == editor.CHOICE
    assert http["method"].choices == ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
    assert http["method"].placeholder == "Default: GET"
    assert http["url"].kind == editor.TEXT and http["url"].required and http["url"].label == "URL"
    assert http["headers"].kind == editor.MAPPING and http["headers"].strings
    assert http["query"].kind == editor.MAPPING and not http["query"].strings
    assert http["json"].kind == editor.JSON and http["json"].label == "JSON"
    assert http["timeout_seconds"].kind == editor.NUMBER
    assert http["expect_status"].kind == editor.JSON
    assert http["body"].multiline
    email = fields_of("send_email")
    assert email["body"].multiline and email["body"].allow_blank
    assert not email["subject"].multiline
    assert "from" in email and email["to"].kind == editor.JSON
    find = fields_of("find_records")
    assert find["limit"].kind == editor.NUMBER and find["limit"].placeholder == "Default: 100"
    assert find["type"].suggests == "data_types"
    assert fields_of("run_workflow")["workflow"].suggests == "workflows"
    assert fields_of("schedule_recurring")["missed"].choices == ("catch_up", "skip")


def test_catalogue_groups_every_action_with_its_description():
    """The "Add a step" menu lists each action once, grouped, Data first."""
    groups = editor.catalogue()
    assert groups[0]["name"] == "Data"
    listed = [action.type for group in groups for action in group["actions"]]
    assert sorted(listed) == sorted(action.type for action in registry.all())
    assert all(action.description for group in groups for action in group["actions"])


VALUES = [
    "hello", "", "123", "true", "null", " padded ", "{{ params.x }}", '"quoted"', "[1, 2]", "line\nbreak",
    0, 12, 1.5, -3, True, False, None, [1, "a"], {"a": {"b": [1, 2]}}, {"x": "{{ steps.a.id }}"},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_json_fields_show_values_that_read_back_unchanged(value):
    """Whatever a JSON field holds, the text it shows reads back as the same value (strings stay strings)."""
    assert editor.parse(editor.JSON, editor.display(editor.JSON, value)) == value


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        (editor.NUMBER, "42", 42),
        (editor.NUMBER, "2.5", 2.5),
        (editor.NUMBER, "{{ params.n }}", "{{ params.n }}"),
        (editor.NUMBER, "lots", "lots"),
        (editor.TEXT, "a\r\nb", "a\nb"),
        (editor.TEXT, "", editor.OMIT),
        (editor.BOOLEAN, "true", True),
        (editor.JSON, "{broken", "{broken"),
    ],
)
def test_typed_text_becomes_the_value_the_schema_expects(kind, text, expected):
    """Numbers become numbers, CRLF from browsers becomes LF, and anything else stays as typed."""
    assert editor.parse(kind, text) == expected


def test_an_empty_required_blank_allowed_field_is_an_empty_string():
    """An empty email body is a body, not a missing key."""
    assert editor.parse(editor.TEXT, "", required=True, allow_blank=True) == ""


EVERYTHING = {
    "format": 1,
    "name": "everything",
    "description": "All the settings\nand a second line",
    "enabled": False,
    "auth": "hmac",
    "signing_secret": "GH_SECRET",
    "signature_header": "X-Sig",
    "response": "sync",
    "methods": ["GET", "POST"],
    "timeout_seconds": 60,
    "sync_wait_seconds": 10,
    "retry": {"max_attempts": 3, "backoff_seconds": 2.5},
    "on_error": "continue",
    "only_when": "{{ params.go }}",
    "idempotency_key": "{{ params.id }}",
    "trigger": {"on": "record_updated", "type": "lead"},
    "on_failure": "alert_team",
    "max_concurrency": 2,
    "parameters": [
        {"name": "go", "type": "boolean", "required": True, "default": True, "description": "Whether"},
        {"name": "id", "type": "text", "list": True, "default": "123"},
        {"name": "lead", "type": "record:lead"},
        {"name": "meta", "type": "object", "default": {"a": [1, 2]}},
    ],
    "steps": [
        {"key": "call", "action": "http_request", "on_error": "continue", "retry": {"max_attempts": 4},
         "description": "Tell the shop",
         "config": {"method": "POST", "url": "https://example.com/{{ params.id }}",
                    "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}", "X-Number": "5"},
                    "json": {"id": "{{ params.id }}", "n": 5}, "expect_status": [200, 201], "timeout_seconds": 2.5}},
        {"action": "set_values", "config": {"values": {"text": "5", "number": 5, "empty": "", "none": None}}},
        {"key": "mail", "action": "send_email", "only_when": "{{ steps.call.status == 200 }}",
         "config": {"to": ["a@example.com", "b@example.com"], "subject": "Hi", "body": ""}},
        {"key": "bulk", "action": "update_records", "config": {"type": "lead", "filter": "{{ steps.step_2.filter }}",
                                                               "fields": {"score": 1}}},
        {"key": "stop", "action": "terminate", "config": {}},
    ],
}


TEMPLATE_WORKFLOWS = [
    workflow for path in sorted((Path(editor.__file__).parent / "bundles" / "templates").glob("*.json"))
    for workflow in json.loads(path.read_text())["workflows"]
]


@pytest.mark.parametrize(
    "document", [EVERYTHING, *DEMO["workflows"], *TEMPLATE_WORKFLOWS], ids=lambda document: document["name"]
)
def test_a_definition_shown_in_the_editor_saves_back_unchanged(document):
    """Opening a workflow and saving it without touching anything changes nothing."""
    assembled = editor.assemble(editor.form_data(document))
    assert not assembled.problems
    assert editor.canonical(assembled.document) == editor.canonical(document)


def _form(**steps_and_params):
    return editor.form_data({"format": 1, "name": "wf", **steps_and_params})


def test_reordered_uids_reorder_the_steps():
    """Dragging changes the order of the hidden step ids, and that alone reorders the definition."""
    data = _form(steps=[{"key": "a", "action": "terminate"}, {"key": "b", "action": "terminate"}])
    data["steps"] = list(reversed(data["steps"]))
    assert [step["key"] for step in editor.assemble(data).document["steps"]] == ["b", "a"]


def test_mapping_rows_without_a_name_are_reported_on_the_field():
    """A value typed without a name is not silently dropped."""
    data = _form(steps=[{"key": "a", "action": "create_record", "config": {"type": "t", "fields": {}}}])
    uid = data["steps"][0]
    data[f"s-{uid}-c-fields-k"] = ["status", "", ""]
    data[f"s-{uid}-c-fields-v"] = ["paid", "orphan", ""]
    assembled = editor.assemble(data)
    assert assembled.document["steps"][0]["config"]["fields"] == {"status": "paid"}
    assert assembled.problems == {f"s-{uid}-c-fields": "Every value needs a name."}


@pytest.mark.django_db
def test_errors_land_on_the_input_they_belong_to():
    """A bad expression, a bad URL, a bad parameter name and a bad retry each sit next to their own input."""
    data = _form(
        parameters=[{"name": "Bad Name", "type": "text"}],
        retry={"max_attempts": 99, "backoff_seconds": 5},
        steps=[
            {"key": "find", "action": "find_records", "config": {"type": "lead", "filter": {"x": "{{ parms.x }}"}}},
            {"key": "call", "action": "http_request", "config": {"url": "ftp://nope"}},
            {"key": "mail", "action": "send_email",
             "config": {"to": "a@example.com", "subject": "{{ params.x ", "body": ""}},
        ],
    )
    check = editor.validate(data)
    param, find, call, mail = data["params"][0], *data["steps"]
    assert "must match" in check.errors[f"p-{param}-name"]
    assert check.errors["retry_max_attempts"] == "must be an integer from 1 to 25"
    assert check.errors[f"s-{find}-c-filter"].startswith("x: unknown name parms")
    assert "absolute http or https URL" in check.errors[f"s-{call}-c-url"]
    assert "unexpected end of template" in check.errors[f"s-{mail}-c-subject"]
    assert not check.general


@pytest.mark.django_db
def test_a_reference_to_a_later_step_is_an_error_until_the_steps_are_reordered():
    """steps.X must be an earlier step: moving the step up fixes the error."""
    data = _form(steps=[
        {"key": "mail", "action": "send_email", "config": {"to": "a@example.com", "subject": "{{ steps.find.count }}",
                                                           "body": ""}},
        {"key": "find", "action": "find_records", "config": {"type": "lead"}},
    ])
    mail = data["steps"][0]
    assert editor.validate(data, data_types=["lead"]).errors == {
        f"s-{mail}-c-subject": "steps.find is not an earlier step"
    }
    data["steps"].reverse()
    assert editor.validate(data, data_types=["lead"]).ok


@pytest.mark.django_db
def test_unknown_names_are_warnings_and_unknown_record_types_errors():
    """A missing data type for a step warns (it may be created later); a record parameter's type must exist."""
    data = _form(
        parameters=[{"name": "lead", "type": "record:lead"}],
        steps=[{"key": "find", "action": "find_records", "config": {"type": "leads"}}],
    )
    check = editor.validate(data, data_types=["lead"])
    assert check.ok
    assert "no data type named 'leads'" in check.warnings[f"s-{data['steps'][0]}-c-type"]
    check = editor.validate(data, data_types=[])
    assert check.errors[f"p-{data['params'][0]}-type"] == "no data type named 'lead'"


def test_each_step_sees_the_parameters_and_earlier_steps_only():
    """The names in scope grow step by step."""
    data = _form(
        parameters=[{"name": "amount", "type": "number"}],
        steps=[{"key": "find", "action": "terminate"}, {"action": "terminate"}, {"key": "last", "action": "terminate"}],
    )
    scope = editor.scope_by_step(editor.assemble(data))
    first, second, third = (scope[uid] for uid in data["steps"])
    assert first[:1] == ["params.amount"] and "steps.find" not in first
    assert second[:2] == ["params.amount", "steps.find"]
    assert third[:3] == ["params.amount", "steps.find", "steps.step_2"]
    assert "now" in third


def test_unmappable_paths_are_general_errors():
    """An error without an input (too many steps) is still shown, in the summary."""
    assembled = editor.assemble(_form())
    by_input, general = editor.errors_by_input({"steps": "at most 200 steps"}, assembled)
    assert by_input == {} and general == ["steps: at most 200 steps"]


def test_new_step_keys_are_unique():
    """Adding a second find_records step does not reuse the first one's key."""
    assert editor.unique_key("find_records", {"find_records"}) == "find_records_2"
    assert editor.unique_key("9lives", set()) == "step_9lives"
