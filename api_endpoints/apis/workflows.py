"""Workflows by name: list, create, read, replace, delete, publish, test-run a draft, versions."""
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api_endpoints.pagination import Pagination, paginated_response
from api_endpoints.permissions import IsEditor
from config.errors import ValidationError
from logs.models import RunTrigger
from workflows import definition as definitions
from workflows.engine import run_execute
from workflows.models import WorkflowVersion
from workflows.parameters import coerce_params
from workflows.selectors import workflow_get, workflow_list
from workflows.services import (
    run_enqueue,
    workflow_create,
    workflow_delete,
    workflow_publish,
    workflow_update,
)

from .base import ManagementApi, acting_user
from .runs import RunDetailOutput


# --- The definition format, for the OpenAPI document (the services validate it) -------------
class ParameterDoc(serializers.Serializer):
    name = serializers.CharField(help_text="^[a-z][a-z0-9_]{0,62}$")
    type = serializers.CharField(help_text="text, number, integer, boolean, date, datetime, email, url, object, file or record:<type>")
    list = serializers.BooleanField(required=False)
    required = serializers.BooleanField(required=False)
    default = serializers.JSONField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class StepDoc(serializers.Serializer):
    key = serializers.CharField(required=False)
    action = serializers.CharField(help_text="An action type of the catalogue, e.g. create_record.")
    config = serializers.DictField(required=False)
    only_when = serializers.CharField(required=False, allow_null=True)
    retry = serializers.DictField(required=False, allow_null=True)
    on_error = serializers.ChoiceField(choices=definitions.ON_ERROR, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class DefinitionDoc(serializers.Serializer):
    """A whole workflow definition (DESIGN.md, "Workflow definition"); unknown keys are refused."""

    format = serializers.IntegerField(required=False)
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    auth = serializers.ChoiceField(choices=definitions.AUTH_MODES, required=False)
    response = serializers.ChoiceField(choices=definitions.RESPONSE_MODES, required=False)
    methods = serializers.ListField(child=serializers.ChoiceField(choices=definitions.METHODS), required=False)
    timeout_seconds = serializers.IntegerField(required=False)
    sync_wait_seconds = serializers.IntegerField(required=False)
    retry = serializers.DictField(required=False, allow_null=True)
    on_error = serializers.ChoiceField(choices=definitions.ON_ERROR, required=False)
    only_when = serializers.CharField(required=False, allow_null=True)
    trigger = serializers.DictField(required=False, allow_null=True)
    idempotency_key = serializers.CharField(required=False, allow_null=True)
    on_failure = serializers.CharField(required=False, allow_null=True)
    max_concurrency = serializers.IntegerField(required=False, allow_null=True)
    signing_secret = serializers.CharField(required=False, allow_null=True)
    signature_header = serializers.CharField(required=False, allow_null=True)
    parameters = serializers.ListField(child=ParameterDoc(), required=False)
    steps = serializers.ListField(child=StepDoc(), required=False)


# --- Output ----------------------------------------------------------------------------------
class WorkflowOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(source="definition.description")
    enabled = serializers.BooleanField()
    auth = serializers.CharField()
    response = serializers.CharField(source="definition.response")
    methods = serializers.ListField(child=serializers.CharField(), source="definition.methods")
    live_version = serializers.IntegerField(source="live_version.number", allow_null=True)
    revision = serializers.IntegerField()
    modified = serializers.DateTimeField()
    endpoint = serializers.SerializerMethodField()

    def get_endpoint(self, workflow) -> str:
        request = self.context.get("request")
        path = f"/api/wf/{workflow.name}"
        return request.build_absolute_uri(path) if request else path


class WorkflowDetailOutput(WorkflowOutput):
    definition = serializers.JSONField()


class VersionOutput(serializers.Serializer):
    number = serializers.IntegerField()
    published = serializers.DateTimeField()
    published_by = serializers.CharField(source="published_by.get_username", allow_null=True)
    live = serializers.SerializerMethodField()
    definition = serializers.JSONField()

    def get_live(self, version) -> bool:
        return version.workflow.live_version_id == version.id


def _definition_from(api: ManagementApi, name: str | None = None) -> dict:
    document = api.body()
    if name is not None and "name" not in document:
        document = {**document, "name": name}
    return document


class WorkflowListApi(ManagementApi):
    """Every workflow, by name."""

    pagination_class = Pagination

    class OutputSerializer(WorkflowOutput):
        pass

    @extend_schema(responses=OutputSerializer(many=True), operation_id="workflows_list")
    def get(self, request):
        return paginated_response(
            serializer_class=self.OutputSerializer, queryset=workflow_list(), request=request, view=self
        )


class WorkflowCreateApi(ManagementApi):
    """Save a new workflow's draft from its full JSON definition (publish to make it live)."""

    permission_classes = (IsEditor,)

    class InputSerializer(DefinitionDoc):
        pass

    class OutputSerializer(WorkflowDetailOutput):
        pass

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, operation_id="workflows_create")
    def post(self, request):
        workflow = workflow_create(definition=_definition_from(self), user=acting_user(request))
        return Response(self.OutputSerializer(workflow, context={"request": request}).data, status=status.HTTP_201_CREATED)


class WorkflowDetailApi(ManagementApi):
    """One workflow with its full draft definition."""

    class OutputSerializer(WorkflowDetailOutput):
        pass

    @extend_schema(responses=OutputSerializer, operation_id="workflows_read")
    def get(self, request, name):
        workflow = workflow_get(name=name)
        return Response(self.OutputSerializer(workflow, context={"request": request}).data)


IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=False,
    description="The revision you edited; a newer save by someone else is then a 409, not a silent loss.",
)


class WorkflowReplaceApi(ManagementApi):
    """Replace a workflow's draft with a full definition (a different `name` renames it)."""

    permission_classes = (IsEditor,)

    class InputSerializer(DefinitionDoc):
        name = serializers.CharField(required=False)

    class OutputSerializer(WorkflowDetailOutput):
        pass

    @extend_schema(request=InputSerializer, responses=OutputSerializer, parameters=[IF_MATCH],
                   operation_id="workflows_replace")
    def put(self, request, name):
        workflow = workflow_get(name=name)
        revision = _revision(request)
        workflow = workflow_update(
            workflow=workflow, definition=_definition_from(self, name), revision=revision, user=acting_user(request)
        )
        return Response(self.OutputSerializer(workflow, context={"request": request}).data)


def _revision(request) -> int | None:
    value = request.headers.get("If-Match", "").strip().strip('"').removeprefix("W/").strip('"')
    if not value:
        return None
    if not value.isdigit():
        raise ValidationError("Invalid If-Match header.", fields={"If-Match": "expected a revision number"})
    return int(value)


class WorkflowDeleteApi(ManagementApi):
    """Delete a workflow, its draft and its versions (its runs stay in the log)."""

    permission_classes = (IsEditor,)

    @extend_schema(responses={204: None}, operation_id="workflows_delete")
    def delete(self, request, name):
        workflow_delete(workflow=workflow_get(name=name))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkflowPublishApi(ManagementApi):
    """Freeze the draft as a new version and make it live."""

    permission_classes = (IsEditor,)

    class OutputSerializer(VersionOutput):
        pass

    @extend_schema(request=None, responses={201: OutputSerializer}, operation_id="workflows_publish")
    def post(self, request, name):
        version = workflow_publish(workflow=workflow_get(name=name), user=acting_user(request))
        return Response(self.OutputSerializer(version).data, status=status.HTTP_201_CREATED)


class WorkflowTestRunApi(ManagementApi):
    """Run the draft now, in this request, and answer with the finished run and its steps."""

    permission_classes = (IsEditor,)

    class InputSerializer(serializers.Serializer):
        params = serializers.DictField(required=False, default=dict, help_text="The parameters, as JSON.")
        dry_run = serializers.BooleanField(
            required=False, default=False, help_text="Capture emails and outbound HTTP instead of sending them."
        )

    class OutputSerializer(RunDetailOutput):
        pass

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="workflows_test_run")
    def post(self, request, name):
        serializer = self.InputSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        workflow = workflow_get(name=name)
        draft = definitions.parse(workflow.definition)
        params = coerce_params(draft.parameters, serializer.validated_data["params"], source="json")
        user = acting_user(request)
        with transaction.atomic():
            run = run_enqueue(
                workflow=workflow, params=params, trigger=RunTrigger.MANUAL, draft=True,
                caller=f"user:{user.get_username()}" if user else request.user.username,
                dry_run=serializer.validated_data["dry_run"], dispatch_on_commit=False,
            )
        run_execute(run.id)
        run.refresh_from_db()
        return Response(self.OutputSerializer(run, context={"request": request}).data)


class WorkflowVersionListApi(ManagementApi):
    """A workflow's published versions, newest first."""

    pagination_class = Pagination

    class OutputSerializer(VersionOutput):
        pass

    @extend_schema(responses=OutputSerializer(many=True), operation_id="workflows_versions")
    def get(self, request, name):
        workflow = workflow_get(name=name)
        versions = WorkflowVersion.objects.filter(workflow=workflow).select_related("workflow", "published_by")
        return paginated_response(
            serializer_class=self.OutputSerializer, queryset=versions.order_by("-number"), request=request, view=self
        )
