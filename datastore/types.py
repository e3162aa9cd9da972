"""Field and parameter types: check a declaration, and coerce a value to its canonical JSON form."""
import json
import math
import re
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.validators import EmailValidator, URLValidator
from django.utils.dateparse import parse_date, parse_datetime

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
SCALAR_TYPES = ("text", "number", "integer", "boolean", "date", "datetime", "email", "url", "object", "file")
RECORD_PREFIX = "record:"
STRING_SOURCES = ("form", "query")
SOURCES = ("json", *STRING_SOURCES)
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
FILE_KEYS = frozenset({"name", "url", "size", "content_type"})

_validate_email = EmailValidator()
_validate_url = URLValidator()


class CoercionError(ValueError):
    """A value that does not fit its type; the message names the expected type."""


def record_type(type_name) -> str | None:
    """The data type that a `record:<type>` type refers to, else None."""
    if isinstance(type_name, str) and type_name.startswith(RECORD_PREFIX):
        return type_name.removeprefix(RECORD_PREFIX)
    return None


def is_known_type(type_name) -> bool:
    """Whether `type_name` is one of the field types (with a well-formed `record:<type>`)."""
    target = record_type(type_name)
    return type_name in SCALAR_TYPES if target is None else bool(NAME_RE.fullmatch(target))


def is_empty(value) -> bool:
    """Whether a coerced value counts as missing for a required field (null, empty text or list)."""
    return value is None or value == "" or value == []


def iso_datetime(moment: datetime) -> str:
    """The canonical form of a datetime: ISO 8601 in UTC with "Z", microseconds only when present."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def validate_field_spec(spec) -> dict[str, str]:
    """Errors in one field or parameter declaration ({"name", "type", "list", "required", ...}), by key."""
    if not isinstance(spec, dict):
        return {"": "must be an object"}
    errors = {}
    name = spec.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        errors["name"] = "must match ^[a-z][a-z0-9_]{0,62}$ (lowercase letters, digits and underscores)"
    type_name = spec.get("type")
    if not is_known_type(type_name):
        errors["type"] = f"unknown type {type_name!r}; use one of {', '.join(SCALAR_TYPES)} or record:<data type>"
    for key in ("list", "required"):
        if key in spec and not isinstance(spec[key], bool):
            errors[key] = "must be true or false"
    if spec.get("description") is not None and not isinstance(spec["description"], str):
        errors["description"] = "must be text"
    return errors


def coerce_value(field: dict, value, *, source: str = "json"):
    """The canonical JSON value of `value` for a field declaration; CoercionError names the expected type."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    if not field.get("list"):
        return _coerce_one(field["type"], value, source)
    items = _as_list(value, source)
    if items is None:
        return None
    coerced = []
    for index, item in enumerate(items):
        try:
            if item is None:
                raise CoercionError(f"{_expected(field['type'])}, got null")
            coerced.append(_coerce_one(field["type"], item, source))
        except CoercionError as exc:
            raise CoercionError(f"item {index}: {exc}") from None
    return coerced


def _as_list(value, source):
    strings = source in STRING_SOURCES
    if value is None or not strings and isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, list | tuple):
        # A form or query string gives a one-item list for `?tags=a,b` or `?tags=["a","b"]`.
        if strings and len(value) == 1 and isinstance(value[0], str):
            return _split(value[0])
        return list(value)
    if strings and isinstance(value, str):
        return _split(value)
    raise CoercionError(f"expected a list, got {_describe(value)}")


def _split(text: str) -> list:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except (ValueError, RecursionError):
            items = None
        if not isinstance(items, list):
            raise CoercionError(f"expected a list (a JSON array or comma-separated values), got {_describe(text)}")
        return items
    return [part.strip() for part in text.split(",")]


def _coerce_one(type_name: str, value, source: str):
    if value is None:
        return None
    # An empty string is how forms, query strings and many webhook senders say "no value".
    if isinstance(value, str) and not value.strip() and type_name != "text":
        return None
    target = record_type(type_name)
    if target is not None:
        return _record(target, value)
    coerce = _COERCERS.get(type_name)
    if coerce is None:
        raise CoercionError(f"unknown type {type_name!r}")
    return coerce(value, source)


def _text(value, source):
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    raise CoercionError(f"expected text, got {_describe(value)}")


def _parse_number(value):
    """An int or finite float from a number or numeric text, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    elif isinstance(value, str) and NUMBER_RE.fullmatch(value.strip()):
        text = value.strip()
        value = int(text) if text.lstrip("+-").isdigit() else float(text)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _number(value, source):
    number = _parse_number(value)
    if number is None:
        raise CoercionError(f"expected a number, got {_describe(value)}")
    return number


def _integer(value, source):
    number = _parse_number(value)
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if not isinstance(number, int):
        raise CoercionError(f"expected an integer, got {_describe(value)}")
    return number


def _boolean(value, source):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise CoercionError(f"expected a boolean, got {_describe(value)}")


def _date(value, source):
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = parse_date(text) or parse_datetime(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, datetime):
            parsed = parsed.date()
        if parsed is not None:
            return parsed.isoformat()
    raise CoercionError(f"expected a date (YYYY-MM-DD), got {_describe(value)}")


def _datetime(value, source):
    moment = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise CoercionError(f"expected a datetime (ISO 8601), got {_describe(value)}")
    # Naive times are read as UTC, the zone every datetime is stored in.
    return iso_datetime(moment)


def _email(value, source):
    if isinstance(value, str):
        text = value.strip()
        try:
            _validate_email(text)
        except ValidationError:
            pass
        else:
            local, _, domain = text.rpartition("@")
            return f"{local}@{domain.lower()}"
    raise CoercionError(f"expected an email address, got {_describe(value)}")


def _is_url(text) -> bool:
    try:
        _validate_url(text)
    except ValidationError:
        return False
    return True


def _url(value, source):
    if isinstance(value, str) and _is_url(value.strip()):
        return value.strip()
    raise CoercionError(f"expected a URL, got {_describe(value)}")


class _CanonicalEncoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, datetime):
            return iso_datetime(o)
        if isinstance(o, date):
            return o.isoformat()
        if isinstance(o, Decimal):
            return _parse_number(o)
        if isinstance(o, uuid.UUID):
            return str(o)
        return super().default(o)


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _object(value, source):
    try:
        if source in STRING_SOURCES and isinstance(value, str):
            return json.loads(value, parse_constant=_refuse_constant)
        return json.loads(json.dumps(value, cls=_CanonicalEncoder, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise CoercionError(f"expected JSON, got {_describe(value)}") from None


def _is_file_url(text) -> bool:
    # Files kept in our own storage have site-relative URLs ("/media/uploads/…").
    return isinstance(text, str) and ((text.startswith("/") and not text.startswith("//")) or _is_url(text))


def _file(value, source):
    if isinstance(value, File):
        return _store_upload(value)
    if source in STRING_SOURCES and isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            pass
    if isinstance(value, str) and _is_file_url(value.strip()):
        return value.strip()
    if isinstance(value, dict) and not set(value) - FILE_KEYS and _is_file_url(value.get("url")):
        size, content_type = value.get("size"), value.get("content_type")
        if (size is None or type(size) is int and size >= 0) and isinstance(content_type, str | None):
            name = value.get("name") or value["url"].rstrip("/").rsplit("/", 1)[-1]
            return {"name": str(name), "url": value["url"], "size": size, "content_type": content_type}
    raise CoercionError(f"expected a file (an upload, a URL or {{name, url, size, content_type}}), got {_describe(value)}")


def _store_upload(upload: File) -> dict:
    """Keep an uploaded file through Django's storage and describe it as a file value."""
    name = upload.name.replace("\\", "/").rsplit("/", 1)[-1] or "upload"
    stored = default_storage.save(f"uploads/{uuid.uuid4().hex}/{name}", upload)
    return {
        "name": name,
        "url": default_storage.url(stored),
        "size": upload.size,
        "content_type": getattr(upload, "content_type", None),
    }


def _record(target: str, value):
    if isinstance(value, dict) and "id" in value:
        # A whole record from an expression ({{ steps.lead }}) stands for its id.
        if value.get("type", target) != target:
            raise CoercionError(f"expected a {target} id, got a {value['type']} record")
        value = value["id"]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            pass
    raise CoercionError(f"expected a {target} id, got {_describe(value)}")


_COERCERS = {
    "text": _text,
    "number": _number,
    "integer": _integer,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "email": _email,
    "url": _url,
    "object": _object,
    "file": _file,
}

_EXPECTED = {
    "text": "expected text",
    "number": "expected a number",
    "integer": "expected an integer",
    "boolean": "expected a boolean",
    "date": "expected a date (YYYY-MM-DD)",
    "datetime": "expected a datetime (ISO 8601)",
    "email": "expected an email address",
    "url": "expected a URL",
    "object": "expected JSON",
    "file": "expected a file",
}


def _expected(type_name: str) -> str:
    target = record_type(type_name)
    return f"expected a {target} id" if target else _EXPECTED.get(type_name, f"expected {type_name}")


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"
