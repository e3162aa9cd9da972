"""API tokens, for administrators: list, make (the value is shown once), read, revoke."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api_endpoints.pagination import Pagination, paginated_response
from api_endpoints.permissions import IsAdmin
from api_endpoints.selectors import token_get, token_list
from api_endpoints.services import token_create, token_revoke

from .base import ManagementApi, acting_user


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The clear part of the token (er_<prefix>_…), to tell tokens apart.")
    admin = serializers.BooleanField(help_text="App-wide; otherwise limited to `workflows`.")
    workflows = serializers.SerializerMethodField(help_text="The workflows a limited token may call.")
    created = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.get_username", allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    active = serializers.BooleanField()

    def get_workflows(self, token) -> list[str]:
        return sorted(workflow.name for workflow in token.workflows.all())


class TokenListApi(ManagementApi):
    """Every API token (never its value)."""

    permission_classes = (IsAdmin,)
    pagination_class = Pagination

    class OutputSerializer(TokenOutput):
        pass

    @extend_schema(responses=OutputSerializer(many=True), operation_id="tokens_list")
    def get(self, request):
        return paginated_response(serializer_class=self.OutputSerializer, queryset=token_list(), request=request, view=self)


class TokenCreateApi(ManagementApi):
    """A new token: app-wide without `workflows`, else limited to them; `token` is shown this once."""

    permission_classes = (IsAdmin,)

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        workflows = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    class OutputSerializer(TokenOutput):
        token = serializers.CharField(help_text="The token itself; it cannot be shown again.")

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, operation_id="tokens_create")
    def post(self, request):
        serializer = self.InputSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        made = token_create(**serializer.validated_data, user=acting_user(request))
        return Response({**TokenOutput(made.token).data, "token": made.value}, status=status.HTTP_201_CREATED)


class TokenDetailApi(ManagementApi):
    """One token (never its value)."""

    permission_classes = (IsAdmin,)

    class OutputSerializer(TokenOutput):
        pass

    @extend_schema(responses=OutputSerializer, operation_id="tokens_read")
    def get(self, request, id):
        return Response(self.OutputSerializer(token_get(id=id)).data)


class TokenRevokeApi(ManagementApi):
    """Revoke a token: it stops working at once; the row stays for the record."""

    permission_classes = (IsAdmin,)

    class OutputSerializer(TokenOutput):
        pass

    @extend_schema(responses={200: OutputSerializer}, operation_id="tokens_revoke")
    def delete(self, request, id):
        return Response(self.OutputSerializer(token_revoke(token=token_get(id=id))).data)
