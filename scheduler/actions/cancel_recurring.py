"""cancel_recurring: stop a recurring event (Bubble's "Cancel a recurring event")."""
from rest_framework import serializers

from workflows.actions.base import Action, ActionConfig


class CancelRecurring(Action):
    """Stop a recurring event for good."""

    type = "cancel_recurring"
    label = "Cancel a recurring event"
    description = (
        "Stops the recurring event `id` (e.g. the id schedule_recurring returned) and removes it; runs it already "
        "started are not affected. Outputs {cancelled}: 1, or 0 when there was no such event."
    )
    group = "Scheduling"
    example = {"id": "{{ steps.nightly.id }}"}

    class Config(ActionConfig):
        id = serializers.UUIDField(help_text="The recurring event's id.")

    def run(self, *, config, context):
        from scheduler.services import recurring_events_cancel

        if context.dry_run:
            context.captured.append({"kind": "cancel_recurring", "id": str(config["id"])})
            return {"cancelled": 0, "dry_run": True}
        return {"cancelled": recurring_events_cancel(ids=[config["id"]])}
