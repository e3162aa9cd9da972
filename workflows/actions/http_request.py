"""http_request: an outbound HTTP call through the guard (Bubble's API Connector call)."""
import json
from email.message import Message
from urllib.parse import urlsplit

import requests
from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.errors import ActionError, ErrorCode
from workflows import outbound

from .base import Action, ActionConfig

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
BODY_KEYS = ("json", "form", "body")
ERROR_BODY_PREVIEW = 200


def validate_http_url(value: str) -> None:
    """Refuse anything but an absolute http or https URL."""
    parts = urlsplit(value)
    if parts.scheme not in outbound.ALLOWED_SCHEMES or not parts.hostname:
        raise serializers.ValidationError("Enter an absolute http or https URL.")


class MethodField(serializers.ChoiceField):
    """An HTTP method, accepted in any letter case."""

    def __init__(self, **kwargs):
        super().__init__(choices=METHODS, **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data.upper() if isinstance(data, str) else data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 100, "maximum": 599},
            {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}, "minItems": 1},
        ]
    }
)
class StatusListField(serializers.Field):
    """An HTTP status code or a list of them, always validated into a list of ints."""

    default_error_messages = {"invalid": "Expected an HTTP status code (100-599) or a list of them."}

    def to_internal_value(self, data):
        items = data if isinstance(data, list) else [data]
        if not items:
            self.fail("invalid")
        statuses = []
        for item in items:
            if isinstance(item, str) and item.strip().isdigit():
                item = int(item)
            if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
                self.fail("invalid")
            statuses.append(item)
        return statuses

    def to_representation(self, value):
        return value


def _query_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_query_value(item) for item in value]
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _parse_body(content: bytes, content_type: str):
    if not content:
        return None
    header = Message()
    header["Content-Type"] = content_type or "application/octet-stream"
    mime = header.get_content_type()
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.loads(content)
        except ValueError:
            pass
    charset = header.get_param("charset") or "utf-8"
    try:
        return content.decode(str(charset), errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


class HttpRequest(Action):
    """Call an outside HTTP API; internal addresses are refused unless allowed in settings."""

    type = "http_request"
    # It writes nothing to the database: no transaction is held open (on SQLite, a write lock)
    # while it waits on the network; its log row commits right after.
    transactional = False
    label = "Send an HTTP request"
    description = (
        "Calls an outside HTTP API and returns its status, headers and body (parsed when it is JSON). "
        "A status outside expect_status fails the step; server errors, 429s and timeouts may be retried."
    )
    group = "Integrations"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["http_request"]
    example = {
        "method": "POST",
        "url": "https://api.example.com/orders",
        "headers": {"Authorization": "Bearer {{ secrets.SHOP_TOKEN }}"},
        "json": {"order_id": "{{ params.order_id }}", "paid": True},
        "expect_status": [200, 201],
    }

    class Config(ActionConfig):
        method = MethodField(default="GET", help_text="HTTP method: GET, POST, PUT, PATCH, DELETE or HEAD.")
        url = serializers.CharField(
            validators=[validate_http_url], help_text="The http or https URL to call."
        )
        headers = serializers.DictField(
            child=serializers.CharField(allow_blank=True),
            required=False,
            help_text=(
                "Request headers. An Idempotency-Key of <run id>:<step index> is added unless you set one."
            ),
        )
        query = serializers.DictField(
            required=False, help_text="Query string parameters; a list value repeats the parameter."
        )
        json = serializers.JSONField(
            required=False, help_text="A JSON body (sent as application/json). Use one of json, form, body."
        )
        form = serializers.DictField(
            required=False, help_text="A form body (application/x-www-form-urlencoded). Use one of json, form, body."
        )
        body = serializers.CharField(
            required=False,
            allow_blank=True,
            trim_whitespace=False,
            help_text="A raw text body, sent as UTF-8 (text/plain unless a Content-Type header says otherwise).",
        )
        timeout_seconds = serializers.FloatField(
            required=False,
            min_value=0.1,
            help_text=(
                "Seconds allowed for the whole call, redirects and body included; default from the "
                "server's settings, never past the run's own time limit."
            ),
        )
        expect_status = StatusListField(
            required=False,
            help_text="A status code or a list of them that count as success; default any 2xx.",
        )

        def validate_headers(self, value):
            for name, header_value in value.items():
                if not name or any(character in name for character in "\r\n:") or any(
                    character in header_value for character in "\r\n"
                ):
                    raise serializers.ValidationError(f"Invalid header {name!r}: no line breaks allowed.")
            return value

        def validate(self, attrs):
            attrs = super().validate(attrs)
            given = [key for key in BODY_KEYS if key in attrs]
            if len(given) > 1:
                raise serializers.ValidationError(
                    {key: f"Use only one of json, form and body (got {', '.join(given)})." for key in given}
                )
            return attrs

    def prepare(self, *, config, context) -> requests.PreparedRequest:
        """The request this step sends, with its Idempotency-Key."""
        headers = dict(config.get("headers") or {})
        if not any(name.lower() == "idempotency-key" for name in headers):
            headers["Idempotency-Key"] = context.idempotency_key
        data = None
        if "form" in config:
            data = {key: _query_value(value) for key, value in config["form"].items()}
        elif "body" in config:
            data = config["body"].encode("utf-8")
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "text/plain; charset=utf-8"
        query = {key: _query_value(value) for key, value in (config.get("query") or {}).items()}
        request = requests.Request(
            config["method"], config["url"], headers=headers, params=query, data=data, json=config.get("json")
        )
        try:
            return request.prepare()
        except (requests.exceptions.RequestException, ValueError) as exc:
            raise ActionError(f"Invalid request: {exc}", code=ErrorCode.HTTP_FAILED) from exc

    def run(self, *, config, context):
        prepared = self.prepare(config=config, context=context)
        if context.dry_run:
            body = next((config[key] for key in BODY_KEYS if key in config), None)
            context.captured.append(
                {
                    "kind": "http_request",
                    "method": prepared.method,
                    "url": prepared.url,
                    "headers": dict(prepared.headers),
                    "body": body,
                }
            )
            return {"status": None, "headers": {}, "body": None, "dry_run": True}

        timeout = min(
            config.get("timeout_seconds", settings.ENGINE_ROOM_HTTP_DEFAULT_TIMEOUT), context.remaining_seconds()
        )
        if timeout <= 0:
            raise ActionError("The run's time limit passed before the request was sent.", code=ErrorCode.TIMEOUT)
        response = outbound.send(
            prepared, timeout=timeout, max_bytes=settings.ENGINE_ROOM_HTTP_MAX_RESPONSE_BYTES
        )
        body = _parse_body(response.content, response.headers.get("content-type", ""))
        expected = config.get("expect_status")
        if not (response.status in expected if expected else 200 <= response.status < 300):
            preview = response.content[:ERROR_BODY_PREVIEW].decode("utf-8", errors="replace")
            host = urlsplit(response.url).hostname
            raise ActionError(
                f"HTTP {response.status} from {host}: {preview}",
                retryable=response.status >= 500 or response.status == 429,
                code=ErrorCode.HTTP_FAILED,
                extra={"status": response.status, "body": preview},
            )
        return {"status": response.status, "headers": response.headers, "body": body}
