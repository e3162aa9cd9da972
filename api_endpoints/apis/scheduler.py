"""Scheduled runs (list, create, cancel, pause, resume) and recurring events (CRUD, pause, resume)."""
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api_endpoints.pagination import Pagination, paginated_response
from api_endpoints.permissions import IsEditor
from scheduler import selectors
from scheduler.models import MissedPolicy, OverlapPolicy, ScheduledRunStatus
from scheduler.services import recurring as recurring_services
from scheduler.services import scheduled as scheduled_services
from workflows.selectors import workflow_get

from .base import ManagementApi, acting_user


def _caller(request) -> str:
    user = acting_user(request)
    return f"user:{user.get_username()}" if user else "api token"


class ScheduledRunOutput(serializers.Serializer):
    id = serializers.UUIDField()
    workflow = serializers.CharField(source="workflow_name")
    params = serializers.JSONField()
    due_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=ScheduledRunStatus.choices)
    trigger = serializers.CharField()
    batch = serializers.UUIDField(source="batch_id", allow_null=True)
    run = serializers.UUIDField(source="run_id", allow_null=True)
    error = serializers.CharField()
    caller = serializers.CharField()
    created = serializers.DateTimeField()
    dispatched_at = serializers.DateTimeField(allow_null=True)


class ScheduledRunListApi(ManagementApi):
    """Scheduled runs, soonest first; by default those still waiting (pending and paused)."""

    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        workflow = serializers.CharField(required=False)
        status = serializers.ChoiceField(choices=[*ScheduledRunStatus.values, "all"], required=False)

    class OutputSerializer(ScheduledRunOutput):
        pass

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True),
                   operation_id="scheduled_list")
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.scheduled_run_list(**filters.validated_data)
        return paginated_response(serializer_class=self.OutputSerializer, queryset=rows, request=request, view=self)


class ScheduledRunCreateApi(ManagementApi):
    """Schedule one run of a workflow's live version, at a time or after a delay."""

    permission_classes = (IsEditor,)

    class InputSerializer(serializers.Serializer):
        workflow = serializers.CharField()
        params = serializers.DictField(required=False, default=dict)
        at = serializers.DateTimeField(required=False)
        delay_seconds = serializers.FloatField(required=False, min_value=0, max_value=10 * 365 * 86400)

        def validate(self, attrs):
            if ("at" in attrs) == ("delay_seconds" in attrs):
                raise serializers.ValidationError({"at": "give exactly one of at and delay_seconds"})
            return attrs

    class OutputSerializer(ScheduledRunOutput):
        pass

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, operation_id="scheduled_create")
    def post(self, request):
        serializer = self.InputSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        due_at = data.get("at") or timezone.now() + timedelta(seconds=data["delay_seconds"])
        row = scheduled_services.scheduled_run_create(
            workflow=workflow_get(name=data["workflow"]), params=data["params"], due_at=due_at,
            caller=_caller(request),
        )
        return Response(self.OutputSerializer(row).data, status=status.HTTP_201_CREATED)


class ScheduledRunDetailApi(ManagementApi):
    """One scheduled run, with the run it became once dispatched."""

    class OutputSerializer(ScheduledRunOutput):
        pass

    @extend_schema(responses=OutputSerializer, operation_id="scheduled_read")
    def get(self, request, id):
        return Response(self.OutputSerializer(selectors.scheduled_run_get(id=id)).data)


def _scheduled_verb(verb: str, service, doc: str):
    """An API class that applies one of cancel/pause/resume to one scheduled run."""

    class Api(ManagementApi):
        permission_classes = (IsEditor,)

        class OutputSerializer(ScheduledRunOutput):
            pass

        @extend_schema(request=None, responses=OutputSerializer, operation_id=f"scheduled_{verb}")
        def post(self, request, id):
            row = selectors.scheduled_run_get(id=id)
            service(ids=[row.id])
            return Response(self.OutputSerializer(selectors.scheduled_run_get(id=id)).data)

    Api.__doc__ = doc
    Api.__name__ = Api.__qualname__ = f"ScheduledRun{verb.title()}Api"
    Api.OutputSerializer.__qualname__ = f"ScheduledRun{verb.title()}Api.OutputSerializer"
    return Api


ScheduledRunCancelApi = _scheduled_verb(
    "cancel", scheduled_services.scheduled_runs_cancel, "Cancel a waiting scheduled run; a dispatched one stays."
)
ScheduledRunPauseApi = _scheduled_verb(
    "pause", scheduled_services.scheduled_runs_pause, "Hold a pending scheduled run until it is resumed."
)
ScheduledRunResumeApi = _scheduled_verb(
    "resume", scheduled_services.scheduled_runs_resume, "Let a paused scheduled run go (at once if overdue)."
)


class RecurringEventOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    workflow = serializers.CharField(source="workflow.name")
    params = serializers.JSONField()
    frequency = serializers.JSONField()
    timezone = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True)
    enabled = serializers.BooleanField()
    missed = serializers.ChoiceField(choices=MissedPolicy.choices)
    overlap = serializers.ChoiceField(choices=OverlapPolicy.choices)
    last_slot = serializers.DateTimeField(allow_null=True)
    next_fire_at = serializers.DateTimeField(source="next_slot", allow_null=True)
    fire_count = serializers.IntegerField()
    last_error = serializers.CharField()
    created = serializers.DateTimeField()


class RecurringEventInput(serializers.Serializer):
    """What defines an event; every field is optional on PATCH."""

    workflow = serializers.CharField()
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    params = serializers.DictField(required=False, default=dict)
    frequency = serializers.JSONField(help_text='{"every": 5, "unit": "minutes"}, "daily" … "yearly", or {"cron": "…"}')
    timezone = serializers.CharField(required=False, default="UTC")
    start = serializers.DateTimeField(required=False, allow_null=True)
    end = serializers.DateTimeField(required=False, allow_null=True)
    missed = serializers.ChoiceField(choices=MissedPolicy.choices, required=False, default=MissedPolicy.CATCH_UP)
    overlap = serializers.ChoiceField(choices=OverlapPolicy.choices, required=False, default=OverlapPolicy.SKIP)


class RecurringEventListApi(ManagementApi):
    """Recurring events by workflow."""

    pagination_class = Pagination

    class OutputSerializer(RecurringEventOutput):
        pass

    @extend_schema(responses=OutputSerializer(many=True), operation_id="recurring_list")
    def get(self, request):
        events = selectors.recurring_event_list()
        return paginated_response(serializer_class=self.OutputSerializer, queryset=events, request=request, view=self)


class RecurringEventCreateApi(ManagementApi):
    """Create a recurring event of a workflow's live version, with its timezone and policies."""

    permission_classes = (IsEditor,)

    class InputSerializer(RecurringEventInput):
        pass

    class OutputSerializer(RecurringEventOutput):
        pass

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, operation_id="recurring_create")
    def post(self, request):
        serializer = self.InputSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        event = recurring_services.recurring_event_create(
            workflow=workflow_get(name=data.pop("workflow")), timezone_name=data.pop("timezone"), **data
        )
        return Response(self.OutputSerializer(event).data, status=status.HTTP_201_CREATED)


class RecurringEventDetailApi(ManagementApi):
    """One recurring event."""

    class OutputSerializer(RecurringEventOutput):
        pass

    @extend_schema(responses=OutputSerializer, operation_id="recurring_read")
    def get(self, request, id):
        return Response(self.OutputSerializer(selectors.recurring_event_get(id=id)).data)


class RecurringEventUpdateApi(ManagementApi):
    """Change an event; a fire already due is taken first, so an edit never drops one silently."""

    permission_classes = (IsEditor,)

    class InputSerializer(RecurringEventInput):
        enabled = serializers.BooleanField(required=False)

    class OutputSerializer(RecurringEventOutput):
        pass

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="recurring_update")
    def patch(self, request, id):
        event = selectors.recurring_event_get(id=id)
        serializer = self.InputSerializer(data=self.body(), partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        enabled = changes.pop("enabled", None)
        if "workflow" in changes:
            changes["workflow"] = workflow_get(name=changes["workflow"])
        if "timezone" in changes:
            changes["timezone_name"] = changes.pop("timezone")
        if changes:
            event = recurring_services.recurring_event_update(event=event, **changes)
        if enabled is not None:
            event = recurring_services.recurring_event_set_enabled(event=event, enabled=enabled)
        return Response(self.OutputSerializer(selectors.recurring_event_get(id=event.id)).data)


class RecurringEventDeleteApi(ManagementApi):
    """Delete an event (cancel_recurring); the runs it started stay in the log."""

    permission_classes = (IsEditor,)

    @extend_schema(request=None, responses={204: None}, operation_id="recurring_delete")
    def delete(self, request, id):
        recurring_services.recurring_event_delete(event=selectors.recurring_event_get(id=id))
        return Response(status=status.HTTP_204_NO_CONTENT)
