"""Config fields and helpers the scheduling actions share."""
from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.errors import ActionError, ApplicationError, ParameterError
from logs.models import WorkflowRun
from workflows.actions.base import ValueField
from workflows.definition import NAME_RE


def workflow_field():
    return serializers.RegexField(NAME_RE.pattern, help_text="The workflow's name.")


def params_field():
    return serializers.DictField(
        child=ValueField(), required=False, default=dict,
        help_text="Its parameters by name; checked against the live version now and again when the run starts.",
    )


class WallDateTimeField(serializers.DateTimeField):
    """An ISO datetime kept as given: with an offset it is an instant, without one a wall-clock time."""

    def enforce_timezone(self, value):
        return value


@extend_schema_field({"type": "array", "items": {}, "maxItems": 100_000})
class ItemListField(serializers.Field):
    """A list of any JSON values (records included), up to ENGINE_ROOM_LIST_MAX_ITEMS items."""

    default_error_messages = {
        "not_a_list": "Expected a list of items.",
        "too_long": "At most {limit} items (ENGINE_ROOM_LIST_MAX_ITEMS); got {count}.",
    }

    def to_internal_value(self, data):
        # No per-item field: 100,000 items are checked against the item parameter's type once,
        # in the service, instead of once here and once there.
        if not isinstance(data, list | tuple):
            self.fail("not_a_list")
        limit = settings.ENGINE_ROOM_LIST_MAX_ITEMS
        if len(data) > limit:
            self.fail("too_long", limit=limit, count=len(data))
        return list(data)

    def to_representation(self, value):
        return value


def workflow_or_fail(name: str):
    """The enabled workflow called name, or a step error saying there is none."""
    from workflows.models import Workflow

    workflow = Workflow.objects.select_related("live_version").filter(name=name).first()
    if workflow is None or not workflow.enabled:
        raise ActionError(f"No enabled workflow named {name!r}.")
    return workflow


def calling_run(context) -> WorkflowRun | None:
    """The run this step belongs to: what it schedules joins that run's tree."""
    from scheduler.services.runs import calling_run as current

    run = current()
    if run is None and isinstance(context.run, WorkflowRun):
        run = context.run
    return run


def as_step_error(exc: ApplicationError, workflow: str = "") -> ActionError:
    """A service error as the step's error, keeping its code and naming each bad field."""
    if isinstance(exc, ActionError):
        return exc
    fields = getattr(exc, "fields", {}) or {}
    detail = "; ".join(f"{key}: {message}" for key, message in fields.items())
    if isinstance(exc, ParameterError) and workflow:
        message = f"Bad parameters for {workflow!r}: {detail}"
    else:
        message = f"{exc.message} {detail}".strip() if detail and detail not in exc.message else exc.message
    return ActionError(message, extra={"fields": fields}, code=exc.code)
