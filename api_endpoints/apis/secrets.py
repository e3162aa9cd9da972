"""Secrets, for administrators: names and descriptions only; values go in and never come out."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api_endpoints.pagination import Pagination, paginated_response
from api_endpoints.permissions import IsAdmin
from api_endpoints.selectors import secret_get
from workflows.models import Secret
from workflows.services import secret_delete, secret_set

from .base import ManagementApi


class SecretOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    created = serializers.DateTimeField()
    modified = serializers.DateTimeField()


class SecretListApi(ManagementApi):
    """Every secret's name and description (never a value)."""

    permission_classes = (IsAdmin,)
    pagination_class = Pagination

    class OutputSerializer(SecretOutput):
        pass

    @extend_schema(responses=OutputSerializer(many=True), operation_id="secrets_list")
    def get(self, request):
        secrets = Secret.objects.order_by("name").defer("ciphertext")
        return paginated_response(serializer_class=self.OutputSerializer, queryset=secrets, request=request, view=self)


class SecretCreateApi(ManagementApi):
    """Store a secret, encrypted at rest (an existing name gets the new value)."""

    permission_classes = (IsAdmin,)

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField()
        value = serializers.CharField(write_only=True, trim_whitespace=False)
        description = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    class OutputSerializer(SecretOutput):
        pass

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, operation_id="secrets_create")
    def post(self, request):
        serializer = self.InputSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        secret = secret_set(**serializer.validated_data)
        return Response(self.OutputSerializer(secret).data, status=status.HTTP_201_CREATED)


class SecretDetailApi(ManagementApi):
    """One secret's name and description."""

    permission_classes = (IsAdmin,)

    class OutputSerializer(SecretOutput):
        pass

    @extend_schema(responses=OutputSerializer, operation_id="secrets_read")
    def get(self, request, name):
        return Response(self.OutputSerializer(secret_get(name=name)).data)


class SecretSetApi(ManagementApi):
    """Create or replace the secret with this name."""

    permission_classes = (IsAdmin,)

    class InputSerializer(serializers.Serializer):
        value = serializers.CharField(write_only=True, trim_whitespace=False)
        description = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    class OutputSerializer(SecretOutput):
        pass

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="secrets_set")
    def put(self, request, name):
        serializer = self.InputSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        secret = secret_set(name=name, **serializer.validated_data)
        return Response(self.OutputSerializer(secret).data)


class SecretDeleteApi(ManagementApi):
    """Delete a secret; workflows that use it fail where they need it."""

    permission_classes = (IsAdmin,)

    @extend_schema(responses={204: None}, operation_id="secrets_delete")
    def delete(self, request, name):
        secret_delete(secret=secret_get(name=name))
        return Response(status=status.HTTP_204_NO_CONTENT)
