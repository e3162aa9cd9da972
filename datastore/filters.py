"""Record filters: DESIGN.md's lookup object ({"score__gte": 50, ...}) as a Q, and `order_by` as an ordering."""
from collections.abc import Mapping
from datetime import datetime

from django.db.models import F, Q, Value
from django.db.models.fields.json import KT, KeyTransform
from django.db.models.functions import StrIndex
from django.db.models.lookups import GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual

from config.errors import RecordError

from .lookups import JSONListHas, SortableDatetime, sortable_datetime
from .models import DataType
from .types import CoercionError, coerce_value, record_type

LOOKUPS = ("exact", "lt", "lte", "gt", "gte", "contains", "icontains", "in", "isnull")
RANGE_LOOKUPS = {"lt": LessThan, "lte": LessThanOrEqual, "gt": GreaterThan, "gte": GreaterThanOrEqual}
TEXT_TYPES = frozenset({"text", "email", "url"})
# Real columns of Record, filterable like fields.
COLUMNS = {"id": "record:record", "created": "datetime", "modified": "datetime"}


class _FilterError(ValueError):
    """One bad filter key; its message goes into RecordError.fields."""


def filter_q(data_type: DataType, filter: Mapping | None, *, source: str = "json") -> Q:
    """A Q for the records of `data_type` matching a filter object; RecordError names every bad key."""
    if not filter:
        return Q()
    if not isinstance(filter, Mapping):
        raise RecordError("A filter must be an object.", fields={"filter": "expected an object"})
    q, errors = Q(), {}
    fields = data_type.field_map()
    for key in filter:
        name, lookup = _split_key(key)
        # Repeated query keys (?score__in=1&score__in=2) are the list itself.
        value = filter.getlist(key) if lookup == "in" and hasattr(filter, "getlist") else filter[key]
        try:
            q &= _condition(fields, name, lookup, value, source)
        except (CoercionError, _FilterError) as exc:
            errors[f"filter.{key}"] = str(exc)
    if errors:
        raise RecordError("Invalid filter.", fields=errors)
    return q


def exact_fields(data_type: DataType, filter: Mapping | None, *, source: str = "json") -> tuple[tuple, list] | None:
    """(field names, coerced values) when every key of a filter is a field of `data_type` equal to a value
    (`{"email": …}`, `{"plan__exact": …}`), whose condition filter_q builds as `data__<name>__exact`; else None,
    for filter_q to build (and to name any bad key)."""
    if not filter or not isinstance(filter, Mapping):
        return None
    fields = data_type.field_map()
    names, values = [], []
    for key in filter:
        name, lookup = _split_key(key)
        spec = fields.get(name)
        if lookup != "exact" or name in COLUMNS or spec is None or "exact" not in _allowed_lookups(name, spec):
            return None
        try:
            value = coerce_value({**spec, "list": False}, filter[key], source=source)
        except CoercionError:
            return None
        if value is None:  # "no value": filter_q's isnull condition
            return None
        names.append(name)
        values.append(value)
    return tuple(names), values


def order_by_expression(data_type: DataType, order_by: str):
    """The ordering for a field name ("-" first for descending); records without a value come last."""
    name = order_by.removeprefix("-")
    spec = data_type.field_map().get(name)
    if name in COLUMNS:
        expression = F(name)
    elif spec is None:
        raise RecordError("Invalid order_by.", fields={"order_by": f"unknown field {name!r}"})
    elif spec.get("list") or spec["type"] in ("object", "file"):
        raise RecordError("Invalid order_by.", fields={"order_by": f"cannot order by a {_kind(spec)} field"})
    elif spec["type"] == "datetime":
        expression = SortableDatetime(KT(f"data__{name}"))
    else:
        expression = KeyTransform(name, "data")
    return expression.desc(nulls_last=True) if order_by.startswith("-") else expression.asc(nulls_last=True)


def _split_key(key: str) -> tuple[str, str]:
    """A filter key's field name and lookup (`exact` when it names none)."""
    name, _, lookup = key.rpartition("__") if "__" in key else (key, "", "exact")
    return name, lookup


def _condition(fields: dict, name: str, lookup: str, value, source: str) -> Q:
    if lookup not in LOOKUPS:
        raise _FilterError(f"unknown lookup {lookup!r}; use one of {', '.join(LOOKUPS)}")
    if name in COLUMNS:
        spec = {"type": COLUMNS[name], "list": False}
    elif name in fields:
        spec = fields[name]
    else:
        raise _FilterError(f"unknown field {name!r}")
    allowed = _allowed_lookups(name, spec)
    if lookup not in allowed:
        raise _FilterError(f"{lookup!r} does not apply to a {_kind(spec)} field; use one of {', '.join(allowed)}")
    if lookup == "isnull":
        isnull = coerce_value({"type": "boolean"}, value, source=source)
        if isnull is None:
            raise _FilterError("expected a boolean, got null")
        return _isnull(name, isnull)
    if lookup == "in":
        values = coerce_value({**spec, "list": True}, value, source=source) or []
        return Q(**{f"{name if name in COLUMNS else f'data__{name}'}__in": values})
    if lookup != "exact" and spec["type"] in TEXT_TYPES:
        # A fragment or bound of an address is text, not a whole email or URL.
        spec = {**spec, "type": "text"}
    value = coerce_value({**spec, "list": False}, value, source=source)
    if value is None:
        if lookup == "exact":
            return _isnull(name, True)
        raise _FilterError(f"{lookup!r} needs a value, got null")
    if name in COLUMNS:
        return Q(**{f"{name}__{lookup}": datetime.fromisoformat(value) if name != "id" else value})
    if lookup == "contains" and spec.get("list"):
        return Q(JSONListHas(KeyTransform(name, "data"), value))
    if lookup == "contains":
        # StrIndex rather than LIKE: SQLite's LIKE ignores case, and `contains` must not.
        return Q(GreaterThan(StrIndex(KT(f"data__{name}"), Value(value)), 0))
    if lookup in RANGE_LOOKUPS and spec["type"] == "datetime":
        return Q(RANGE_LOOKUPS[lookup](SortableDatetime(KT(f"data__{name}")), Value(sortable_datetime(value))))
    return Q(**{f"data__{name}__{lookup}": value})


def _allowed_lookups(name: str, spec: dict) -> tuple[str, ...]:
    if record_type(spec["type"]) is not None and not spec.get("list"):
        return ("exact", "in", "isnull")
    if name in COLUMNS:
        return ("exact", "lt", "lte", "gt", "gte", "in", "isnull")
    if spec.get("list"):
        return ("contains", "isnull")
    if spec["type"] in ("object", "file"):
        return ("isnull",)
    if spec["type"] == "boolean":
        return ("exact", "in", "isnull")
    if spec["type"] in TEXT_TYPES:
        return LOOKUPS
    return ("exact", "lt", "lte", "gt", "gte", "in", "isnull")


def _isnull(name: str, isnull: bool) -> Q:
    if name in COLUMNS:
        return Q(**{f"{name}__isnull": isnull})
    # Missing key or JSON null: both mean "no value".
    empty = Q(**{f"data__{name}__isnull": True}) | Q(**{f"data__{name}": None})
    return empty if isnull else ~empty


def _kind(spec: dict) -> str:
    return f"list of {spec['type']}" if spec.get("list") else spec["type"]
