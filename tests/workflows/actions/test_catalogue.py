"""The catalogue's contract: unique stable ids, docs for users, and schemas that accept their own example."""
from django.conf import settings

from workflows.actions import registry


def test_every_listed_action_loads_once_under_a_unique_type():
    actions = registry.all()
    assert len(actions) == len(settings.ENGINE_ROOM_ACTIONS)
    assert len({action.type for action in actions}) == len(actions)


def test_every_action_is_documented_and_its_example_is_valid():
    for action in registry.all():
        assert action.label and len(action.description) > 20, action.type
        assert action.validate_definition(action.example) == {}, action.type
        for name, field in action.Config().fields.items():
            assert field.help_text or action.type == "terminate", f"{action.type}.{name} has no help text"


def test_unknown_config_keys_are_refused_by_every_action():
    for action in registry.all():
        errors = action.validate_definition({**action.example, "definitely_a_typo": 1})
        assert errors.get("definitely_a_typo") == "unknown key", action.type
