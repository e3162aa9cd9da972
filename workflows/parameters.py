"""Typed workflow parameters: coerce a request's values to the declared types, and guess types from a sample."""
import re
from collections.abc import Iterable, Mapping
from itertools import batched

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
# Ids per lookup: far below any database's limit on a statement's parameters.
RECORDS_PER_QUERY = 900


def coerce_params(parameters: Iterable, raw: Mapping, *, source: str = "json") -> dict:
    """Every declared parameter coerced, defaulted and resolved; one ParameterError naming each bad one."""
    (outcome,) = coerce_params_many(parameters, [raw], source=source)
    if isinstance(outcome, ParameterError):
        raise outcome
    return outcome


def coerce_params_many(parameters: Iterable, raws: list, *, source: str = "json") -> list[dict | ParameterError]:
    """coerce_params for many sets of values (the dispatcher's batch of list items), each set's outcome in
    its place: the records they name are read in one query per record parameter, not one per set."""
    parameters = list(parameters)
    coerced = [_coerce(parameters, raw, source) for raw in raws]
    _resolve_records(parameters, coerced)
    return [ParameterError("Invalid parameters.", fields=errors) if errors else values for values, errors in coerced]


def _coerce(parameters: list, raw: Mapping, source: str) -> tuple[dict, dict]:
    """One set's values coerced and defaulted (records still ids), and its errors by parameter."""
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
    return values, errors


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


def _resolve_records(parameters: list, coerced: list[tuple[dict, dict]]) -> None:
    """Replace `record:<type>` ids with the records' dicts in every set, or report the ids that match no record."""
    for parameter in parameters:
        target = record_type(parameter.type)
        if target is None:
            continue
        wanted = [
            (values, errors, value if parameter.list else [value])
            for values, errors in coerced
            if not is_empty(value := values.get(parameter.name))
        ]
        ids = list(dict.fromkeys(id for _, _, named in wanted for id in named))
        found = {}
        for chunk in batched(ids, RECORDS_PER_QUERY):
            found.update(
                (str(record.pk), record)
                for record in Record.objects.select_related("data_type").filter(data_type__name=target, pk__in=chunk)
            )
        for values, errors, named in wanted:
            missing = [id for id in named if id not in found]
            if missing:
                errors[parameter.name] = f"no {target} record with id {missing[0]!r}"
                continue
            # A dict of its own per set: one run's parameters must not share objects with another's.
            records = [record_to_dict(found[id]) for id in named]
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
