"""DRF exception handler: every error becomes DESIGN.md's JSON shape, never a 500 for bad input."""
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.errors import ApplicationError, ValidationError

_STATUS_CODES = {
    status.HTTP_400_BAD_REQUEST: "bad_request",
    status.HTTP_401_UNAUTHORIZED: "unauthorized",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_409_CONFLICT: "conflict",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "rate_limited",
}


def flatten_errors(detail, prefix: str = "") -> dict[str, str]:
    """Turn DRF's nested error detail into {"steps[2].config.url": "message"}."""
    flat: dict[str, str] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix and key != "non_field_errors" else (prefix or str(key))
            flat.update(flatten_errors(value, path))
    elif isinstance(detail, list):
        if detail and all(not isinstance(item, dict | list) for item in detail):
            flat[prefix or "non_field_errors"] = " ".join(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                flat.update(flatten_errors(item, f"{prefix}[{index}]"))
    else:
        flat[prefix or "non_field_errors"] = str(detail)
    return flat


def error_body(code: str, detail: str, fields: dict | None = None) -> dict:
    return {"error": code, "detail": detail, "fields": fields or {}}


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        fields = exc.fields if isinstance(exc, ValidationError) else {}
        return Response(error_body(str(exc.code), exc.message, fields), status=exc.http_status)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        detail = "; ".join(f"{key}: {message}" for key, message in fields.items())
        response.data = error_body("bad_request", detail or "Invalid input.", fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(_STATUS_CODES.get(response.status_code, "error"), str(detail))
    return response
