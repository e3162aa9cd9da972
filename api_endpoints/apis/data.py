"""The Data API: data types, and records of a type with DESIGN.md's lookups as query parameters."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api_endpoints.pagination import Pagination, paginated_response
from api_endpoints.permissions import IsEditor
from datastore.models import DataType
from datastore.selectors import data_type_get, record_find, record_get, record_to_dict
from datastore.services import (
    data_type_create,
    data_type_delete,
    data_type_update,
    record_create,
    record_delete,
    record_update,
)

from .base import ManagementApi

# Query parameters that are not record filters.
RESERVED_QUERY = frozenset({"page", "page_size", "order_by", "api_token", "format"})


class FieldDoc(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="text, number, integer, boolean, date, datetime, email, url, object, file or record:<type>")
    list = serializers.BooleanField(required=False)
    required = serializers.BooleanField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class DataTypeOutput(serializers.Serializer):
    name = serializers.CharField()
    fields = FieldDoc(many=True)
    created = serializers.DateTimeField()
    modified = serializers.DateTimeField()


class DataTypeListApi(ManagementApi):
    """Every data type with its fields."""

    pagination_class = Pagination

    class OutputSerializer(DataTypeOutput):
        pass

    @extend_schema(responses=OutputSerializer(many=True), operation_id="datatypes_list")
    def get(self, request):
        return paginated_response(
            serializer_class=self.OutputSerializer, queryset=DataType.objects.order_by("name"), request=request, view=self
        )


class DataTypeCreateApi(ManagementApi):
    """A new data type."""

    permission_classes = (IsEditor,)

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField()
        fields = FieldDoc(many=True, required=False)

    class OutputSerializer(DataTypeOutput):
        pass

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, operation_id="datatypes_create")
    def post(self, request):
        body = self.body()
        data_type = data_type_create(name=body.get("name"), fields=body.get("fields", []))
        return Response(self.OutputSerializer(data_type).data, status=status.HTTP_201_CREATED)


class DataTypeDetailApi(ManagementApi):
    """One data type."""

    class OutputSerializer(DataTypeOutput):
        pass

    @extend_schema(responses=OutputSerializer, operation_id="datatypes_read")
    def get(self, request, name):
        return Response(self.OutputSerializer(data_type_get(name=name)).data)


class DataTypeReplaceApi(ManagementApi):
    """Replace a data type's fields; stored values of retyped fields are converted, removed ones dropped."""

    permission_classes = (IsEditor,)

    class InputSerializer(serializers.Serializer):
        fields = FieldDoc(many=True)

    class OutputSerializer(DataTypeOutput):
        pass

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="datatypes_replace")
    def put(self, request, name):
        data_type = data_type_get(name=name)
        data_type = data_type_update(data_type=data_type, fields=self.body().get("fields"))
        return Response(self.OutputSerializer(data_type).data)


class DataTypeDeleteApi(ManagementApi):
    """Delete a data type and its records (refused while another type refers to it)."""

    permission_classes = (IsEditor,)

    @extend_schema(responses={204: None}, operation_id="datatypes_delete")
    def delete(self, request, name):
        data_type_delete(data_type=data_type_get(name=name))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecordOutput(serializers.Serializer):
    """A record: id, type, created, modified, then its fields (which depend on its data type)."""

    def to_representation(self, instance):
        return record_to_dict(instance)


RECORD_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "type": {"type": "string"},
        "created": {"type": "string", "format": "date-time"},
        "modified": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "type", "created", "modified"],
    "additionalProperties": True,
}
FIELDS_SCHEMA = {"type": "object", "additionalProperties": True, "description": "Field values by field name."}


class RecordListApi(ManagementApi):
    """Records of a type, filtered by lookups as query parameters (`?plan=pro&score__gte=50&order_by=-created`)."""

    pagination_class = Pagination

    @extend_schema(
        parameters=[
            OpenApiParameter("order_by", str, required=False, description="A field name; '-' first for descending."),
            OpenApiParameter("page", int, required=False),
            OpenApiParameter("page_size", int, required=False),
        ],
        responses={200: {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
                "results": {"type": "array", "items": RECORD_SCHEMA},
            },
            "required": ["count", "results"],
        }},
        operation_id="records_list",
    )
    def get(self, request, type):
        data_type = data_type_get(name=type)
        query = request.query_params.copy()
        for key in RESERVED_QUERY:
            query.pop(key, None)
        records = record_find(
            data_type=data_type, filter=query or None,
            order_by=request.query_params.get("order_by") or None, source="query",
        )
        return paginated_response(serializer_class=RecordOutput, queryset=records, request=request, view=self)


class RecordCreateApi(ManagementApi):
    """A new record; the body holds its field values."""

    permission_classes = (IsEditor,)

    @extend_schema(request={"application/json": FIELDS_SCHEMA}, responses={201: RECORD_SCHEMA}, operation_id="records_create")
    def post(self, request, type):
        record = record_create(data_type=data_type_get(name=type), fields=self.body())
        return Response(record_to_dict(record), status=status.HTTP_201_CREATED)


class RecordDetailApi(ManagementApi):
    """One record."""

    @extend_schema(responses={200: RECORD_SCHEMA}, operation_id="records_read")
    def get(self, request, type, id):
        record = record_get(data_type=data_type_get(name=type), id=id)
        return Response(record_to_dict(record))


class RecordUpdateApi(ManagementApi):
    """Change the given fields of a record (null clears one); the others keep their values."""

    permission_classes = (IsEditor,)

    @extend_schema(request={"application/json": FIELDS_SCHEMA}, responses={200: RECORD_SCHEMA}, operation_id="records_update")
    def patch(self, request, type, id):
        record = record_get(data_type=data_type_get(name=type), id=id)
        record = record_update(record=record, fields=self.body())
        return Response(record_to_dict(record))


class RecordDeleteApi(ManagementApi):
    """Delete one record."""

    permission_classes = (IsEditor,)

    @extend_schema(responses={204: None}, operation_id="records_delete")
    def delete(self, request, type, id):
        record_delete(record=record_get(data_type=data_type_get(name=type), id=id))
        return Response(status=status.HTTP_204_NO_CONTENT)

