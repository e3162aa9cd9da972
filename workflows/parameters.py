"""Typed workflow parameters: coerce a request's values to the declared types, and guess types from a sample."""
import re
from collections.abc import Iterable, Mapping

from config.errors import ParameterError
from datastore.models import Record
from datastore.selectors import record_to_dict
from datastore.types import (
    NAME_RE,
    STRING_SOURCES,
    CoercionError,
    coerce_value,
    is_empty,
    record_type,
)

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def coerce_params(parameters: Iterable, raw: Mapping, *, source: str = "json") -> dict:
    """Every declared parameter coerced, defaulted and resolved; one ParameterError naming each bad one."""
    parameters = list(parameters)
    values, errors = {}, {}
    for parameter in parameters:
        field = {"type": parameter.type, "list": parameter.list}
        try:
            value = coerce_value(field, _raw_value(raw, parameter, source), source=source)
            if is_empty(value) and parameter.default is not None:
                value = coerce_value(field, parameter.default)
        except CoercionError as exc:
            errors[parameter.name] = str(exc)
            continue
        if is_empty(value) and parameter.required:
            errors[parameter.name] = "required"
            continue
        values[parameter.name] = value
    _resolve_records(parameters, values, errors)
    if errors:
        raise ParameterError("Invalid parameters.", fields=errors)
    return values


def infer_parameters(body: dict) -> list[dict]:
    """Parameter specs ({"name", "type", "list"}) proposed from a sample JSON body ("Detect data")."""
    if not isinstance(body, dict):
        return []
    specs = []
    for key, value in body.items():
        # Keys that cannot be parameter names stay reachable as `request.body`; proposing them would fail to save.
        if isinstance(key, str) and NAME_RE.fullmatch(key):
            type_name, is_list = _infer(value)
            specs.append({"name": key, "type": type_name, "list": is_list})
    return specs


def _raw_value(raw: Mapping, parameter, source: str):
    if parameter.list and source in STRING_SOURCES and hasattr(raw, "getlist"):
        # A QueryDict holds ?tags=a&tags=b as repeated keys; .get() would keep only the last.
        return raw.getlist(parameter.name) or None
    return raw.get(parameter.name)


def _resolve_records(parameters: list, values: dict, errors: dict) -> None:
    """Replace `record:<type>` ids with the records' dicts, or report the ids that match no record."""
    for parameter in parameters:
        target, value = record_type(parameter.type), values.get(parameter.name)
        if target is None or is_empty(value):
            continue
        ids = value if parameter.list else [value]
        found = {
            str(record.pk): record
            for record in Record.objects.select_related("data_type").filter(data_type__name=target, pk__in=ids)
        }
        missing = [id for id in ids if id not in found]
        if missing:
            errors[parameter.name] = f"no {target} record with id {missing[0]!r}"
            continue
        records = [record_to_dict(found[id]) for id in ids]
        values[parameter.name] = records if parameter.list else records[0]


def _infer(value) -> tuple[str, bool]:
    if isinstance(value, list):
        kinds = {_infer_one(item) for item in value if item is not None}
        if kinds <= {"integer", "number"} and kinds:
            return ("number" if "number" in kinds else "integer"), True
        return (kinds.pop() if len(kinds) == 1 else "object" if kinds else "text"), True
    return _infer_one(value), False


def _infer_one(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict | list):
        return "object"
    if isinstance(value, str):
        if DATE_RE.fullmatch(value) and _coerces("date", value):
            return "date"
        if DATETIME_RE.match(value) and _coerces("datetime", value):
            return "datetime"
        for type_name in ("email", "url"):
            if _coerces(type_name, value):
                return type_name
    return "text"


def _coerces(type_name: str, value) -> bool:
    try:
        coerce_value({"type": type_name}, value)
    except CoercionError:
        return False
    return True
