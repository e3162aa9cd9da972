"""The action catalogue: the classes listed in settings.ENGINE_ROOM_ACTIONS, loaded once by type."""
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import Action, ActionConfig, StepContext

__all__ = ["Action", "ActionConfig", "StepContext", "registry"]


class Registry:
    """Action instances by their stable type id."""

    @cache  # noqa: B019 - one registry for the process; settings don't change at run time
    def actions(self) -> dict[str, Action]:
        found: dict[str, Action] = {}
        for path in settings.ENGINE_ROOM_ACTIONS:
            action_class = import_string(path)
            if action_class.type in found:
                raise ValueError(f"Duplicate action type {action_class.type!r} ({path})")
            found[action_class.type] = action_class()
        return found

    def get(self, type_id: str) -> Action | None:
        return self.actions().get(type_id)

    def all(self) -> list[Action]:
        return list(self.actions().values())


registry = Registry()
