"""The definition format: defaults, and validation that names every problem before anything is saved."""
import pytest

from config.errors import DefinitionError
from workflows import definition as definitions
from workflows.services import workflow_create, workflow_update


def test_defaults_are_filled_in_and_steps_get_keys():
    parsed = definitions.parse(
        {"name": "hello", "steps": [{"action": "set_values", "config": {"values": {"a": 1}}}]}
    )
    assert parsed.document["auth"] == "token"
    assert parsed.document["response"] == "async"
    assert parsed.document["methods"] == ["POST"]
    assert parsed.document["timeout_seconds"] == 300
    assert parsed.document["retry"] == {"max_attempts": 1, "backoff_seconds": 5}
    assert parsed.steps[0].key == "step_1"
    assert parsed.timeout_seconds == 300


def test_unknown_top_level_keys_are_named():
    with pytest.raises(DefinitionError) as error:
        definitions.parse({"name": "x", "stpes": [], "paramters": []})
    assert set(error.value.fields) == {"stpes", "paramters"}


def test_every_problem_is_reported_at_once():
    doc = {
        "name": "Bad Name",
        "auth": "magic",
        "parameters": [{"name": "amount", "type": "money"}],
        "steps": [
            {"key": "a", "action": "no_such_action", "config": {}},
            {"key": "b", "action": "create_record", "config": {"fields": {}}},
            {"key": "b", "action": "set_values", "config": {"values": {"x": "{{ params.amount + }}"}}},
            {"key": "d", "action": "set_values", "config": {"values": {"y": "{{ steps.later.value }}"}}},
            {"key": "later", "action": "set_values", "config": {"values": {"z": 1}, "typo": True}},
        ],
    }
    with pytest.raises(DefinitionError) as error:
        definitions.parse(doc)
    fields = error.value.fields
    assert "name" in fields
    assert "auth" in fields
    assert "parameters[0].type" in fields
    assert fields["steps[0].action"] == "unknown action 'no_such_action'"
    assert fields["steps[1].config.type"] == "This field is required."
    assert "duplicate step key" in fields["steps[2].key"]
    assert "steps[2].config.values.x" in fields
    assert fields["steps[3].config.values.y"] == "steps.later is not an earlier step"
    assert fields["steps[4].config.typo"] == "unknown key"


def test_unknown_names_in_expressions_are_refused():
    with pytest.raises(DefinitionError) as error:
        definitions.parse(
            {"name": "x", "steps": [{"action": "set_values", "config": {"values": {"a": "{{ parms.x }}"}}}]}
        )
    assert "unknown name parms" in error.value.fields["steps[0].config.values.a"]


def test_newer_format_is_refused():
    with pytest.raises(DefinitionError) as error:
        definitions.parse({"format": 2, "name": "x"})
    assert "format" in error.value.fields


def test_signed_modes_need_a_signing_secret():
    with pytest.raises(DefinitionError) as error:
        definitions.parse({"name": "x", "auth": "stripe"})
    assert "signing_secret" in error.value.fields


@pytest.mark.django_db
def test_trigger_and_record_parameters_must_name_existing_types():
    with pytest.raises(DefinitionError) as error:
        workflow_create(
            definition={
                "name": "x",
                "trigger": {"on": "record_created", "type": "ghost"},
                "parameters": [{"name": "who", "type": "record:ghost"}],
            }
        )
    assert error.value.fields == {
        "trigger.type": "no data type named 'ghost'",
        "parameters[0].type": "no data type named 'ghost'",
    }


@pytest.mark.django_db
def test_a_stale_save_is_a_conflict_not_an_overwrite(make_workflow):
    from config.errors import ConflictError

    workflow = make_workflow("shared", publish=False)
    opened_at = workflow.revision
    workflow_update(workflow=workflow, definition={"name": "shared", "description": "first"}, revision=opened_at)
    with pytest.raises(ConflictError):
        workflow_update(workflow=workflow, definition={"name": "shared", "description": "second"}, revision=opened_at)
    workflow.refresh_from_db()
    assert workflow.definition["description"] == "first"
