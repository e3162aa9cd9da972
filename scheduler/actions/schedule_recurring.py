"""schedule_recurring: a recurring event (Bubble's "Schedule a recurring event")."""
from rest_framework import serializers

from config.errors import ApplicationError
from scheduler import recurrence
from scheduler.models import MissedPolicy, OverlapPolicy
from workflows.actions.base import Action, ActionConfig

from .common import (
    WallDateTimeField,
    as_step_error,
    calling_run,
    params_field,
    workflow_field,
    workflow_or_fail,
)


class FrequencyField(serializers.JSONField):
    """{"every": N, "unit": "seconds|minutes|hours"}, a calendar name, or {"cron": "…"}."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        try:
            return recurrence.parse_frequency(data).document
        except recurrence.FrequencyError as exc:
            raise serializers.ValidationError(str(exc)) from None


class TimezoneField(serializers.CharField):
    """An IANA timezone name."""

    def to_internal_value(self, data):
        name = super().to_internal_value(data)
        try:
            recurrence.zone(name)
        except recurrence.FrequencyError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return name


class ScheduleRecurring(Action):
    """Run a workflow on a frequency in a timezone, from start to an optional end."""

    type = "schedule_recurring"
    label = "Schedule a recurring event"
    description = (
        "Runs a workflow on a `frequency` — {\"every\": N, \"unit\": \"seconds|minutes|hours\"}, daily, weekly, "
        "monthly, quarterly, yearly (anchored at `start`; the 31st falls on the last day of shorter months) or "
        "{\"cron\": \"30 2 * * *\"} — in an IANA `timezone` (a time skipped by a DST change runs an hour later, "
        "one that occurs twice runs once). `start` without an offset is a wall-clock time there. `missed`: "
        "catch_up (one run after downtime) or skip; `overlap`: skip (while the previous run is unfinished) or "
        "allow. Outputs {id, next_fire_at}."
    )
    group = "Scheduling"
    example = {"workflow": "nightly_report", "params": {}, "frequency": "daily", "timezone": "Europe/Berlin",
               "start": "2025-01-01T02:30:00"}

    class Config(ActionConfig):
        workflow = workflow_field()
        params = params_field()
        frequency = FrequencyField(help_text="How often it runs.")
        timezone = TimezoneField(required=False, default="UTC", help_text="An IANA timezone, e.g. Europe/Berlin.")
        start = WallDateTimeField(required=False, help_text="The first time (default: now).")
        end = WallDateTimeField(required=False, allow_null=True, default=None, help_text="No runs after this.")
        missed = serializers.ChoiceField(choices=MissedPolicy.values, required=False, default=MissedPolicy.CATCH_UP,
                                         help_text="After downtime: catch_up (run once) or skip.")
        overlap = serializers.ChoiceField(choices=OverlapPolicy.values, required=False, default=OverlapPolicy.SKIP,
                                          help_text="While the previous run is unfinished: skip or allow.")

    def run(self, *, config, context):
        from scheduler.services import recurring_event_create

        context.refuse_secrets(config["params"])
        if context.dry_run:
            context.captured.append({"kind": "schedule_recurring", "workflow": config["workflow"],
                                     "frequency": config["frequency"], "timezone": config["timezone"]})
            return {"id": None, "next_fire_at": None, "dry_run": True}
        workflow = workflow_or_fail(config["workflow"])
        try:
            event = recurring_event_create(
                workflow=workflow, params=config["params"], frequency=config["frequency"],
                timezone_name=config["timezone"], start=config.get("start"), end=config["end"],
                missed=config["missed"], overlap=config["overlap"], created_by_run=calling_run(context),
            )
        except ApplicationError as exc:
            raise as_step_error(exc, workflow.name) from exc
        return {"id": str(event.id), "next_fire_at": event.next_slot.astimezone(recurrence.zone(event.timezone))}
