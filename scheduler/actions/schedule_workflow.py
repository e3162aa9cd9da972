"""schedule_workflow: a one-off run later (Bubble's "Schedule API workflow")."""
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from config.errors import ApplicationError
from workflows.actions.base import Action, ActionConfig

from .common import as_step_error, calling_run, params_field, workflow_field, workflow_or_fail


class ScheduleWorkflow(Action):
    """Schedule one run of a workflow at a time or after a delay."""

    type = "schedule_workflow"
    label = "Schedule a workflow"
    description = (
        "Schedules one run of a workflow at a datetime (`at`) or after `delay_seconds`; it runs the version "
        "that is live when it starts, joins this run's tree one link further down the chain, and can be "
        "paused or cancelled until then. Outputs {id, due_at}."
    )
    group = "Scheduling"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["schedule"]
    example = {"workflow": "send_reminder", "params": {"email": "{{ params.email }}"}, "delay_seconds": 3600}

    class Config(ActionConfig):
        workflow = workflow_field()
        params = params_field()
        at = serializers.DateTimeField(required=False, help_text="When it runs (ISO 8601; UTC without an offset).")
        delay_seconds = serializers.FloatField(
            required=False, min_value=0, max_value=366 * 86400, help_text="Or: how many seconds from now."
        )

        def validate(self, attrs):
            attrs = super().validate(attrs)
            if not self.partial and ("at" in attrs) == ("delay_seconds" in attrs):
                raise serializers.ValidationError({"at": "give either at or delay_seconds"})
            return attrs

    def validate_definition(self, config: dict) -> dict[str, str]:
        errors = super().validate_definition(config)
        if ("at" in config) == ("delay_seconds" in config):
            errors.setdefault("at", "give either at or delay_seconds")
        return errors

    def run(self, *, config, context):
        from scheduler.services import scheduled_run_create

        if "at" in config:
            due_at = config["at"]
        else:
            due_at = timezone.now() + timedelta(seconds=config["delay_seconds"])
        context.refuse_secrets(config["params"])
        if context.dry_run:
            context.captured.append({"kind": "schedule_workflow", "workflow": config["workflow"],
                                     "params": config["params"], "due_at": due_at.isoformat()})
            return {"id": None, "due_at": due_at, "dry_run": True}
        workflow = workflow_or_fail(config["workflow"])
        try:
            scheduled = scheduled_run_create(
                workflow=workflow, params=config["params"], due_at=due_at, parent=calling_run(context),
            )
        except ApplicationError as exc:
            raise as_step_error(exc, workflow.name) from exc
        return {"id": str(scheduled.id), "due_at": scheduled.due_at}
