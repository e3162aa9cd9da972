"""Runs: list with filters, a run with its steps (token-scoped), cancel and re-run."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api_endpoints.pagination import Pagination, paginated_response
from api_endpoints.permissions import CanReadRuns, IsEditor
from api_endpoints.selectors import TokenInfo, run_get, run_list
from logs.models import RunStatus, RunTrigger
from workflows.services import run_cancel, run_rerun

from .base import ManagementApi, acting_user


class StepOutput(serializers.Serializer):
    index = serializers.IntegerField()
    key = serializers.CharField()
    action = serializers.CharField()
    attempt = serializers.IntegerField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    input = serializers.JSONField()
    output = serializers.JSONField()
    output_truncated = serializers.BooleanField()
    error_code = serializers.CharField()
    error = serializers.CharField()
    skipped_reason = serializers.CharField()
    wu = serializers.FloatField()


class RunOutput(serializers.Serializer):
    id = serializers.UUIDField()
    workflow = serializers.CharField(source="workflow_name")
    version = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    trigger = serializers.ChoiceField(choices=RunTrigger.choices)
    caller = serializers.CharField()
    params = serializers.JSONField()
    response = serializers.JSONField(allow_null=True)
    error_code = serializers.CharField()
    error = serializers.CharField()
    current_step = serializers.IntegerField()
    attempt = serializers.IntegerField()
    depth = serializers.IntegerField()
    parent_run = serializers.UUIDField(source="parent_run_id", allow_null=True)
    root_run = serializers.UUIDField(source="root_run_id", allow_null=True)
    idempotency_key = serializers.CharField()
    wu = serializers.FloatField()
    created = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)
    status_url = serializers.SerializerMethodField()

    def get_version(self, run) -> str:
        return str(run.version.number) if run.version_id else "draft"

    def get_status_url(self, run) -> str:
        request = self.context.get("request")
        path = f"/api/runs/{run.id}"
        return request.build_absolute_uri(path) if request else path


class RunDetailOutput(RunOutput):
    request = serializers.JSONField(allow_null=True)
    steps = StepOutput(many=True)


def _token(request) -> TokenInfo | None:
    return request.auth if isinstance(request.auth, TokenInfo) else None


class RunListApi(ManagementApi):
    """Runs, newest first; filter by workflow, status, trigger and creation time."""

    permission_classes = (CanReadRuns,)
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        workflow = serializers.CharField(required=False)
        status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
        trigger = serializers.ChoiceField(choices=RunTrigger.choices, required=False)
        created_after = serializers.DateTimeField(required=False)
        created_before = serializers.DateTimeField(required=False)

    class OutputSerializer(RunOutput):
        pass

    @extend_schema(
        parameters=[FilterSerializer,
                    OpenApiParameter("page", int, required=False),
                    OpenApiParameter("page_size", int, required=False)],
        responses=OutputSerializer(many=True), operation_id="runs_list",
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        runs = run_list(**filters.validated_data, token=_token(request))
        return paginated_response(serializer_class=self.OutputSerializer, queryset=runs, request=request, view=self)


class RunDetailApi(ManagementApi):
    """A run with its steps; an API token limited to some workflows sees only their runs."""

    permission_classes = (CanReadRuns,)

    class OutputSerializer(RunDetailOutput):
        pass

    @extend_schema(responses=OutputSerializer, operation_id="runs_read")
    def get(self, request, id):
        run = run_get(id=id, token=_token(request))
        return Response(self.OutputSerializer(run, context={"request": request}).data)


class RunCancelApi(ManagementApi):
    """Cancel a queued run at once; a running one stops before its next step."""

    permission_classes = (IsEditor,)

    class OutputSerializer(RunOutput):
        pass

    @extend_schema(request=None, responses=OutputSerializer, operation_id="runs_cancel")
    def post(self, request, id):
        run = run_cancel(run=run_get(id=id))
        return Response(self.OutputSerializer(run, context={"request": request}).data)


class RunRerunApi(ManagementApi):
    """Start the run's workflow again with the same parameters, as a new manual run."""

    permission_classes = (IsEditor,)

    class OutputSerializer(RunOutput):
        pass

    @extend_schema(request=None, responses={201: OutputSerializer}, operation_id="runs_rerun")
    def post(self, request, id):
        user = acting_user(request)
        caller = f"user:{user.get_username()}" if user else str(request.user)
        run = run_rerun(run=run_get(id=id), caller=caller)
        return Response(self.OutputSerializer(run, context={"request": request}).data, status=status.HTTP_201_CREATED)
