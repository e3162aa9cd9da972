"""A webhook request taken apart: its body parsed (JSON, form, multipart or query string) and the
copy of it that a run stores as `request` (credentials and signatures removed)."""
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import QueryDict
from django.http.multipartparser import MultiPartParserError

# Never stored with a run, never shown to expressions: credentials and signatures.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "stripe-signature", "x-hub-signature", "x-hub-signature-256"}
)
TOKEN_QUERY_KEY = "api_token"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class InboundError(Exception):
    """A request that cannot be read: `status` 400, 413 or 415, with a message for the caller."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Inbound:
    """What the parameters are read from (`raw`, `source` as coerce_params takes them) and the parsed body."""

    raw: Any
    source: str
    body: Any
    files: tuple[str, ...] = ()


def content_kind(content_type: str) -> str | None:
    """json, form or multipart for the content types a webhook accepts, else None."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    if media == "application/x-www-form-urlencoded":
        return "form"
    if media == "multipart/form-data":
        return "multipart"
    return None


def query_without_token(request) -> QueryDict:
    query = request.GET.copy()
    query.pop(TOKEN_QUERY_KEY, None)
    return query


def flat(query: QueryDict) -> dict:
    """A QueryDict as JSON: one value as itself, repeated keys as a list."""
    return {key: values[0] if len(values) == 1 else values for key, values in query.lists()}


def read_body(request) -> bytes:
    """The raw body (read once; the HMAC checks and the parsers share it)."""
    try:
        return request.body
    except RequestDataTooBig:
        raise InboundError(413, "The request body is too large.") from None


def parse(request, raw_body: bytes) -> Inbound:
    """The request's parameters and body; GET (and a body-less call) read the query string, and a
    parameter missing from the body is read from the query string too."""
    if request.method not in BODY_METHODS or not raw_body:
        query = query_without_token(request)
        return Inbound(raw=query, source="query", body=None)
    kind = content_kind(request.content_type)
    if kind is None:
        raise InboundError(
            415,
            f"Unsupported content type {request.content_type or '(none)'!r}; send application/json, "
            "application/x-www-form-urlencoded or multipart/form-data.",
        )
    query = query_without_token(request)
    if kind == "json":
        body = _json(raw_body)
        ensure_storable(body, "body")
        # Parameters the body leaves out may come in the query string (Bubble callers do both).
        raw = {**flat(query), **body}
        return Inbound(raw=raw, source="json", body=body)
    try:
        form, files = request.POST, request.FILES
    except (MultiPartParserError, SuspiciousOperation, ValueError) as exc:
        raise InboundError(400, f"Malformed {kind} body: {exc}") from None
    raw = query.copy()
    for key, values in form.lists():
        raw.setlist(key, values)
    for key in files:
        raw.setlist(key, files.getlist(key))
    body = flat(form)
    for key in files:
        described = [{"name": f.name, "size": f.size, "content_type": f.content_type} for f in files.getlist(key)]
        body[key] = described[0] if len(described) == 1 else described
    ensure_storable(body, "body")
    return Inbound(raw=raw, source="form", body=body, files=tuple(files))


def _json(raw_body: bytes):
    try:
        text = raw_body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InboundError(400, "The body is not valid UTF-8.") from None
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InboundError(400, f"Malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InboundError(400, "The JSON body must be an object whose keys are the parameters.")
    return body


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def ensure_storable(value, where: str, depth: int = 0) -> None:
    """Refuse text the database cannot store in JSON (NUL characters, lone surrogates), as a 400."""
    if depth > 200:
        raise InboundError(400, f"The {where} is nested too deeply.")
    if isinstance(value, str):
        if "\x00" in value:
            raise InboundError(400, f"The {where} contains a NUL character.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InboundError(400, f"The {where} contains invalid Unicode (a lone surrogate).") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            ensure_storable(key, where, depth + 1)
            ensure_storable(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            ensure_storable(item, where, depth + 1)


def stored_request(request, inbound: Inbound, *, signature_header: str | None = None) -> dict:
    """The request as a run keeps it: method, path, headers and query without credentials, parsed body."""
    hidden = SECRET_HEADERS | ({signature_header.lower()} if signature_header else set())
    headers = {name: value for name, value in request.headers.items() if name.lower() not in hidden}
    stored = {
        "method": request.method,
        "path": request.path,
        "headers": headers,
        "query": flat(query_without_token(request)),
        "body": inbound.body,
    }
    ensure_storable({"headers": headers, "query": stored["query"]}, "request")
    return stored
