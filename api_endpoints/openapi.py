"""The OpenAPI 3 document: the management API as drf-spectacular sees it, plus one operation per
enabled workflow whose request body is generated from the workflow's parameters."""
import logging

from django.db import DatabaseError
from django.urls import URLPattern, URLResolver
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import EndpointEnumerator as SpectacularEnumerator
from drf_spectacular.generators import SchemaGenerator as SpectacularGenerator

from config.errors import ApplicationError
from workflows.models import Workflow
from workflows.selectors import version_definition

from .authentication import ApiTokenAuthentication

logger = logging.getLogger(__name__)

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_STATUSES = {
    "400": "Bad input: malformed body or bad parameters (each one named in `fields`).",
    "401": "No or bad credentials.",
    "403": "Not allowed with these credentials.",
    "404": "No such thing.",
    "405": "Method not allowed.",
    "413": "Body over the size limit.",
    "415": "Unsupported content type.",
    "429": "Rate limit.",
}
MANAGEMENT_ERRORS = ("400", "401", "403", "404", "405", "409", "415", "429")
WORKFLOW_ERRORS = ("400", "401", "403", "404", "405", "413", "415", "429")


class EndpointEnumerator(SpectacularEnumerator):
    """Lists each method of a `routing.by_method` route with its own API class, and skips unnamed
    routes (the no-slash twins of named ones), so that every operation appears once."""

    def _get_api_endpoints(self, patterns, prefix):
        if patterns is None:
            patterns = self.patterns
        endpoints = []
        for pattern in patterns:
            path_regex = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                endpoints.extend(self._get_api_endpoints(pattern.url_patterns, path_regex))
                continue
            if not isinstance(pattern, URLPattern) or pattern.name is None:
                continue
            path = self.get_path_from_regex(path_regex)
            by_method = getattr(pattern.callback, "views_by_method", None)
            if by_method is None:
                if self.should_include_endpoint(path, pattern.callback):
                    endpoints.extend(
                        (path, path_regex, method, pattern.callback) for method in self.get_allowed_methods(pattern.callback)
                    )
                continue
            for method, callback in by_method.items():
                if self.should_include_endpoint(path, callback):
                    endpoints.append((path, path_regex, method, callback))
        return endpoints


class SchemaGenerator(SpectacularGenerator):
    endpoint_inspector_cls = EndpointEnumerator


# --- Workflow operations ------------------------------------------------------------------------
_SCALARS = {
    "text": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "email": {"type": "string", "format": "email"},
    "url": {"type": "string", "format": "uri"},
    "object": {},
}


def parameter_schema(parameter, *, multipart: bool = False) -> dict:
    """The JSON Schema of one workflow parameter as a caller sends it."""
    if parameter.type == "file":
        item = {"type": "string", "format": "binary"} if multipart else {
            "type": "string", "format": "uri", "description": "The file's URL (or send it as a multipart upload)."
        }
    elif parameter.record_type:
        item = {"type": "string", "format": "uuid", "description": f"The id of a {parameter.record_type} record."}
    else:
        item = dict(_SCALARS.get(parameter.type, {}))
    schema = {"type": "array", "items": item} if parameter.list else item
    if parameter.description:
        schema = {**schema, "description": parameter.description}
    if parameter.default is not None:
        schema = {**schema, "default": parameter.default}
    return schema


def body_schema(definition, *, multipart: bool = False) -> dict:
    properties = {p.name: parameter_schema(p, multipart=multipart) for p in definition.parameters}
    required = [p.name for p in definition.parameters if p.required and p.default is None]
    schema = {"type": "object", "properties": properties, "additionalProperties": True}
    if required:
        schema["required"] = required
    return schema


def _security(auth: str) -> list:
    if auth == "token":
        return [{"ApiToken": []}, {"ApiTokenQuery": []}]
    return [{}]


def _auth_note(definition) -> str:
    if definition.auth == "public":
        return "Public: no credentials."
    if definition.auth == "hmac":
        header = definition.signature_header or "X-Hub-Signature-256"
        return f"Signed: `{header}: sha256=<HMAC-SHA256 of the raw body>` keyed by the secret `{definition.signing_secret}`."
    if definition.auth == "stripe":
        return f"Signed with Stripe's scheme (`Stripe-Signature: t=…,v1=…`) keyed by the secret `{definition.signing_secret}`."
    return "An API token: `Authorization: Bearer <token>` or `?api_token=`."


def workflow_operation(definition, method: str) -> dict:
    """One workflow's operation for one HTTP method."""
    responses = {}
    if definition.response == "sync":
        responses["200"] = {"description": "The run's `return_response` (or its summary).", "content": {"application/json": {"schema": {}}}}
        responses["202"] = {"description": "Still running after `sync_wait_seconds`.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueuedRun"}}}}
        responses["502"] = {"description": "The run failed before answering.", "content": {"application/json": {"schema": ERROR_REF}}}
    else:
        responses["202"] = {"description": "Queued.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueuedRun"}}}}
    for code in WORKFLOW_ERRORS:
        responses[code] = {"description": ERROR_STATUSES[code], "content": {"application/json": {"schema": ERROR_REF}}}
    operation = {
        "operationId": f"wf_{definition.name}_{method.lower()}",
        "summary": definition.description or f"Run {definition.name}",
        "description": f"Runs the workflow `{definition.name}` ({definition.response}). {_auth_note(definition)}",
        "tags": ["workflow endpoints"],
        "security": _security(definition.auth),
        "responses": responses,
    }
    if method == "GET":
        operation["parameters"] = [
            {"name": p.name, "in": "query", "required": p.required and p.default is None,
             "schema": parameter_schema(p), **({"description": p.description} if p.description else {})}
            for p in definition.parameters
        ]
    else:
        content = {"application/json": {"schema": body_schema(definition)}}
        if any(p.type == "file" for p in definition.parameters):
            content["multipart/form-data"] = {"schema": body_schema(definition, multipart=True)}
        else:
            content["application/x-www-form-urlencoded"] = {"schema": body_schema(definition)}
        operation["requestBody"] = {"required": False, "content": content}
    return operation


def published_definitions():
    """The definitions of every enabled, published workflow, by name (none before the first migrate)."""
    try:
        # `check --deploy` builds the schema, possibly in a build step before any migration.
        workflows = list(
            Workflow.objects.filter(enabled=True, live_version__isnull=False).defer("definition").order_by("name")
        )
    except DatabaseError:
        return
    for workflow in workflows:
        try:
            definition = version_definition(workflow.live_version_id)
        except ApplicationError:  # a version that no longer parses is not callable, so not documented
            logger.error("Live version of %s does not parse; left out of the schema", workflow.name, exc_info=True)
            continue
        if definition.enabled:
            yield definition


def add_workflow_operations(result, generator, request, public):
    """drf-spectacular postprocessing hook: common components, error responses and the workflow operations."""
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "detail": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["error", "detail", "fields"],
    }
    schemas["QueuedRun"] = {
        "type": "object",
        "properties": {
            "status": {"type": "string"},
            "run_id": {"type": "string", "format": "uuid"},
            "status_url": {"type": "string", "format": "uri"},
        },
        "required": ["status", "run_id", "status_url"],
    }
    security = components.setdefault("securitySchemes", {})
    security.setdefault("ApiToken", {"type": "http", "scheme": "bearer", "description": "er_<prefix>_<secret>"})
    security["ApiTokenQuery"] = {"type": "apiKey", "in": "query", "name": "api_token"}
    paths = result.setdefault("paths", {})
    for operations in paths.values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code in MANAGEMENT_ERRORS:
                responses.setdefault(code, {
                    "description": ERROR_STATUSES.get(code, "Conflict with a newer change."),
                    "content": {"application/json": {"schema": ERROR_REF}},
                })
    for definition in published_definitions():
        paths[f"/api/wf/{definition.name}"] = {
            method.lower(): workflow_operation(definition, method) for method in definition.methods
        }
    return result


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI document names API token authentication."""

    target_class = ApiTokenAuthentication
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "er_<prefix>_<secret>, or ?api_token="}
