"""The base of every management API class: authentication, limits, JSON only, storable input."""
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

from api_endpoints.inbound import InboundError, ensure_storable
from api_endpoints.permissions import IsViewer
from api_endpoints.throttling import IpRateThrottle, PrincipalRateThrottle


class ApiSchema(AutoSchema):
    """Component names from the nested serializer's full name (WorkflowListApi.OutputSerializer ->
    WorkflowListApiOutput), so the many nested Input/OutputSerializers never collide."""

    def get_serializer_name(self, serializer, direction):
        return type(serializer).__qualname__.replace(".", "")


class JsonBodyParser(JSONParser):
    """DRF's JSON parser; JSON nested past Python's recursion limit is a 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply.") from None


class ManagementApi(APIView):
    """Session or API token (DRF settings), per-principal and per-IP rate limits, JSON bodies."""

    permission_classes = (IsViewer,)
    throttle_classes = (PrincipalRateThrottle, IpRateThrottle)
    parser_classes = (JsonBodyParser,)
    schema = ApiSchema()
    # Set by api_endpoints.routing.by_method: every method of the route, for the Allow header.
    route_methods = None

    @property
    def allowed_methods(self):
        return self.route_methods or super().allowed_methods

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # PostgreSQL cannot hold NUL characters or lone surrogates: refuse them as bad input, not a 500.
        try:
            ensure_storable(kwargs, "path")
            ensure_storable(dict(request.query_params.lists()), "query string")
        except InboundError as exc:
            raise exceptions.ValidationError({"non_field_errors": [exc.message]}) from None

    def body(self) -> dict:
        """The JSON body as an object (400 for anything else), checked to be storable."""
        data = self.request.data
        if not isinstance(data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        try:
            ensure_storable(data, "body")
        except InboundError as exc:
            raise exceptions.ValidationError({"non_field_errors": [exc.message]}) from None
        return data


def acting_user(request):
    """The person behind a request, for `created_by`/`modified_by`; None for token callers."""
    user = request.user
    return user if getattr(user, "pk", None) is not None else None
