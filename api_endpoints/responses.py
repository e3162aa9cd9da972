"""The answers of the workflow endpoint, in DESIGN.md's shape or in Bubble's envelopes (`/api/1.1/`)."""
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import BadHeaderError, HttpResponse

from config.exception_handler import error_body

from .waiting import RunState

PLAIN, BUBBLE = "plain", "bubble"

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    502: "workflow_failed",
    503: "unavailable",
}
# Headers a workflow's return_response may not set: the server owns framing and the content type.
RESERVED_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade", "content-length", "content-type"}
)


def json_response(data, status: int, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder), status=status, content_type="application/json"
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(style: str, status: int, detail: str, *, fields: dict | None = None,
                   headers: dict | None = None, extra: dict | None = None) -> HttpResponse:
    code = ERROR_CODES.get(status, "error")
    if style == BUBBLE:
        message = detail
        if fields:
            message += " " + "; ".join(f"{key}: {value}" for key, value in fields.items())
        body = {"statusCode": status, "body": {"status": code, "message": message, **(extra or {})}}
    else:
        body = {**error_body(code, detail, fields), **(extra or {})}
    return json_response(body, status, headers)


def _run_links(request, state_or_id) -> dict:
    run_id = str(getattr(state_or_id, "id", state_or_id))
    return {"run_id": run_id, "status_url": request.build_absolute_uri(f"/api/runs/{run_id}")}


def queued_response(style: str, request, run_id) -> HttpResponse:
    """An async call's answer: 202 with the run id (Bubble: 200, the run id in `response`)."""
    links = _run_links(request, run_id)
    if style == BUBBLE:
        return json_response({"status": "success", "response": links}, 200)
    return json_response({"status": "queued", **links}, 202)


def sync_response(style: str, request, state: RunState) -> HttpResponse:
    """A sync call's answer: the run's return_response, its summary, a 502 if it failed, 202 if still going."""
    links = _run_links(request, state)
    if state.response is not None:
        return _returned(style, state.response)
    if not state.finished:
        if style == BUBBLE:
            return json_response({"status": "success", "response": {"status": state.status, **links}}, 200)
        return json_response({"status": state.status, **links}, 202)
    if state.status == "failed":
        return error_response(
            style, 502, f"The workflow failed: {state.error}".strip(),
            extra={"run_id": links["run_id"], "error_code": state.error_code},
        )
    if style == BUBBLE:
        return json_response({"status": "success", "response": {"status": state.status, **links}}, 200)
    return json_response({"status": state.status, **links}, 200)


def _returned(style: str, answer: dict) -> HttpResponse:
    content_type = answer.get("content_type") or "application/json"
    body = answer.get("body")
    is_json = "json" in content_type.lower()
    if style == BUBBLE and is_json:
        body = {"status": "success", "response": body if isinstance(body, dict) else {"value": body}}
    if is_json or not isinstance(body, str | type(None)):
        content = json.dumps(body, cls=DjangoJSONEncoder)
    else:
        content = body or ""
    try:
        response = HttpResponse(content, status=int(answer.get("status") or 200), content_type=content_type)
    except (BadHeaderError, ValueError):
        response = HttpResponse(content, status=int(answer.get("status") or 200), content_type="application/json")
    for name, value in (answer.get("headers") or {}).items():
        if str(name).lower() in RESERVED_HEADERS:
            continue
        try:
            response[str(name)] = str(value)
        except (BadHeaderError, ValueError, UnicodeError):
            continue  # a header value the workflow rendered with a newline: dropped, not a crash
    return response
