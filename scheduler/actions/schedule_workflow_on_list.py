"""schedule_workflow_on_list: one run per item of a list (Bubble's "Schedule API workflow on a list")."""
from django.conf import settings
from rest_framework import serializers

from config.errors import ApplicationError
from workflows.actions.base import Action, ActionConfig

from .common import ItemListField, as_step_error, calling_run, params_field, workflow_field, workflow_or_fail


class ScheduleWorkflowOnList(Action):
    """Schedule one run of a workflow per item of a list, tracked as a batch."""

    type = "schedule_workflow_on_list"
    label = "Schedule a workflow on a list"
    description = (
        "Schedules one run of a workflow per item of `list` (records or any values), passing the item as the "
        "parameter `item_param` along with `params`, the runs spaced by `interval_seconds` (0: all now). Up to "
        "100,000 items; progress shows on the Scheduler's batches page. Outputs {batch_id, count}."
    )
    group = "Scheduling"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["schedule"]
    example = {"workflow": "send_invoice", "list": "{{ steps.find.records }}", "item_param": "customer",
               "params": {"month": "{{ params.month }}"}, "interval_seconds": 0.5}

    class Config(ActionConfig):
        workflow = workflow_field()
        list = ItemListField(help_text="The items: records or any values.")
        item_param = serializers.RegexField(r"^[a-z][a-z0-9_]{0,62}$", help_text="The parameter each item is passed as.")
        params = params_field()
        interval_seconds = serializers.FloatField(
            required=False, default=0, min_value=0, max_value=86400, help_text="Seconds between two items' runs."
        )

    def run(self, *, config, context):
        from scheduler.services import batch_create

        items = config["list"]
        # Each item is passed as item_param: the whole list is checked as that one parameter.
        context.refuse_secrets({**config["params"], config["item_param"]: items})
        if context.dry_run:
            context.captured.append({"kind": "schedule_workflow_on_list", "workflow": config["workflow"],
                                     "count": len(items), "item_param": config["item_param"]})
            return {"batch_id": None, "count": len(items), "dry_run": True}
        workflow = workflow_or_fail(config["workflow"])
        try:
            batch = batch_create(
                workflow=workflow, items=items, item_param=config["item_param"], params=config["params"],
                interval_seconds=config["interval_seconds"], parent=calling_run(context),
            )
        except ApplicationError as exc:
            raise as_step_error(exc, workflow.name) from exc
        # Each item is one scheduled run: the base cost covers the first.
        context.add_wu(self.wu_cost * max(0, batch.total - 1))
        return {"batch_id": str(batch.id), "count": batch.total}
