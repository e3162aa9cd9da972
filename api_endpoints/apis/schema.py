"""GET /api/schema/ (the OpenAPI document) and /api/docs/ (Swagger UI), for people and admin tokens."""
from urllib.parse import urlencode

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authentication import SessionAuthentication

from api_endpoints.authentication import ApiTokenAuthentication
from api_endpoints.openapi import SchemaGenerator
from api_endpoints.permissions import IsViewer


class SchemaApi(SpectacularAPIView):
    """GET /api/schema/: the OpenAPI document, for a signed-in person or an admin token."""

    generator_class = SchemaGenerator
    authentication_classes = (ApiTokenAuthentication, SessionAuthentication)
    permission_classes = (IsViewer,)


class DocsPage(SpectacularSwaggerView):
    """GET /api/docs/: Swagger UI from drf-spectacular-sidecar (no CDN), behind the same check."""

    authentication_classes = SchemaApi.authentication_classes
    permission_classes = (IsViewer,)
    url_name = "api-schema"

    def _get_schema_url(self, request):
        url = super()._get_schema_url(request)
        token = request.GET.get("api_token")
        if token:
            # A browser opened with ?api_token= fetches the document with the same token.
            url += ("&" if "?" in url else "?") + urlencode({"api_token": token})
        return url
