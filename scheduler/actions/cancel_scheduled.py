"""cancel_scheduled: cancel scheduled runs (Bubble's "Cancel a scheduled API workflow" / "a list of")."""
from rest_framework import serializers

from config.errors import ApplicationError
from workflows.actions.base import Action, ActionConfig

from .common import as_step_error


class CancelScheduled(Action):
    """Cancel one scheduled run or a list of them, as long as they have not started."""

    type = "cancel_scheduled"
    label = "Cancel scheduled runs"
    description = (
        "Cancels the scheduled run `id`, or every one in `ids` (e.g. the ids schedule_workflow returned), that "
        "has not started yet; ids that started, were cancelled or never existed are passed over. "
        "Outputs {cancelled}: how many were cancelled."
    )
    group = "Scheduling"
    example = {"id": "{{ steps.reminder.id }}"}

    class Config(ActionConfig):
        id = serializers.UUIDField(required=False, help_text="One scheduled run's id.")
        ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100_000,
                                    help_text="Or: a list of them.")

        def validate(self, attrs):
            attrs = super().validate(attrs)
            if not self.partial and ("id" in attrs) == ("ids" in attrs):
                raise serializers.ValidationError({"id": "give either id or ids"})
            return attrs

    def validate_definition(self, config: dict) -> dict[str, str]:
        errors = super().validate_definition(config)
        if ("id" in config) == ("ids" in config):
            errors.setdefault("id", "give either id or ids")
        return errors

    def run(self, *, config, context):
        from scheduler.services import scheduled_runs_cancel

        ids = [config["id"]] if "id" in config else config["ids"]
        if context.dry_run:
            context.captured.append({"kind": "cancel_scheduled", "ids": [str(id) for id in ids]})
            return {"cancelled": 0, "dry_run": True}
        try:
            return {"cancelled": scheduled_runs_cancel(ids=ids)}
        except ApplicationError as exc:
            raise as_step_error(exc) from exc
