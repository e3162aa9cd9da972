"""aggregate: count, sum, average, min or max over matching records, in the database (Bubble's :count, :sum, :group by)."""
import math

from django.conf import settings
from django.db.models import Avg, BigIntegerField, Count, F, FloatField, Max, Min, Sum, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from rest_framework import serializers

from config.errors import ActionError, ApplicationError

from .base import Action, ActionConfig
from .records import as_action_error, data_type_or_fail, filter_field, type_field

FUNCTIONS = ("count", "sum", "avg", "min", "max")
NUMBER_TYPES = frozenset({"number", "integer"})
# min/max of these compare their canonical text, which orders like the values (ISO dates and times).
TEXT_ORDERED_TYPES = frozenset({"text", "email", "url", "date", "datetime"})
UNGROUPABLE_TYPES = frozenset({"object", "file"})


class Aggregate(Action):
    """Compute one figure over the records that match a filter, or one per value of a field."""

    type = "aggregate"
    writes = False
    label = "Aggregate records"
    description = (
        "Computes count, sum, avg, min or max of a field over the records of a type that match the filter, in the "
        "database. Outputs {value}; with group_by, {groups: [{key, value}]} — one per value of that field, in key "
        "order, records without a value under the key null. sum of no records is 0; avg, min and max are null. "
        "count without a field counts records; with one, the records that have a value."
    )
    group = "Data"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["aggregate"]
    example = {"type": "order", "filter": {"status": "paid"}, "function": "sum", "field": "amount",
               "group_by": "category"}

    class Config(ActionConfig):
        type = type_field()
        filter = filter_field()
        function = serializers.ChoiceField(
            choices=FUNCTIONS, default="count", help_text="count, sum, avg (average), min or max."
        )
        field = serializers.CharField(
            required=False, allow_blank=True, default="",
            help_text="The field to compute over; needed for sum, avg, min and max (a number field for sum and avg).",
        )
        group_by = serializers.CharField(
            required=False, allow_blank=True, default="",
            help_text="Optional: a field whose values split the records into groups, one figure per group.",
        )

        def validate(self, attrs):
            attrs = super().validate(attrs)
            if not self.partial and attrs.get("function", "count") != "count" and not attrs.get("field"):
                raise serializers.ValidationError({"field": f"{attrs['function']} needs a field"})
            return attrs

    def validate_definition(self, config: dict) -> dict[str, str]:
        errors = super().validate_definition(config)
        function = config.get("function", "count")
        if function in FUNCTIONS and function != "count" and not config.get("field"):
            errors.setdefault("field", f"{function} needs a field")
        return errors

    def run(self, *, config, context):
        data_type = data_type_or_fail(config["type"])
        try:
            result = record_aggregate(
                data_type=data_type, filter=config["filter"], function=config["function"],
                field=config["field"] or None, group_by=config["group_by"] or None,
            )
        except ApplicationError as exc:
            raise as_action_error(exc) from exc
        return result


def record_aggregate(*, data_type, filter: dict | None, function: str, field: str | None,
                     group_by: str | None) -> dict:
    """{"value"} or {"groups": [{"key", "value"}]}: one aggregate query over the matching records."""
    from datastore.filters import filter_q
    from datastore.models import Record

    fields = data_type.field_map()
    spec = _field_spec(fields, field, function) if field else None
    expression = _aggregate_expression(function, field, spec)
    queryset = Record.objects.filter(data_type=data_type).filter(filter_q(data_type, filter)).order_by()
    if not group_by:
        value = queryset.aggregate(value=expression)["value"]
        return {"value": _output(value, function, spec)}

    group_spec = _group_spec(fields, group_by)
    limit = settings.ENGINE_ROOM_AGGREGATE_MAX_GROUPS
    rows = list(
        queryset.annotate(key=KT(f"data__{group_by}")).values("key").annotate(value=expression)
        .order_by(F("key").asc(nulls_last=True))[: limit + 1]
    )
    if len(rows) > limit:
        raise ActionError(
            f"Grouping by {group_by!r} makes more than {limit:,} groups (ENGINE_ROOM_AGGREGATE_MAX_GROUPS); "
            "narrow the filter or group by a field with fewer values."
        )
    groups = [{"key": _group_key(row["key"], group_spec), "value": _output(row["value"], function, spec)}
              for row in rows]
    # The database ordered the keys as text ("10" before "9"); put them in the order of their values.
    groups.sort(key=lambda group: (group["key"] is None, group["key"] if group["key"] is not None else 0))
    return {"groups": groups}


def _field_spec(fields: dict, field: str, function: str) -> dict:
    spec = fields.get(field)
    if spec is None:
        raise ActionError(f"Unknown field {field!r}; the type has {', '.join(fields) or 'no fields'}.",
                          extra={"fields": {"field": f"unknown field {field!r}"}})
    kind = f"list of {spec['type']}" if spec.get("list") else spec["type"]
    if function in ("sum", "avg") and (spec.get("list") or spec["type"] not in NUMBER_TYPES):
        raise ActionError(f"{function} needs a number or integer field; {field!r} is {kind}.",
                          extra={"fields": {"field": f"{function} needs a number field"}})
    if function in ("min", "max") and (spec.get("list") or spec["type"] not in NUMBER_TYPES | TEXT_ORDERED_TYPES):
        raise ActionError(f"{function} needs a number, integer, text, date or datetime field; {field!r} is {kind}.",
                          extra={"fields": {"field": f"{function} cannot compare a {kind} field"}})
    return spec


def _group_spec(fields: dict, group_by: str) -> dict:
    spec = fields.get(group_by)
    if spec is None:
        raise ActionError(f"Unknown group_by field {group_by!r}; the type has {', '.join(fields) or 'no fields'}.",
                          extra={"fields": {"group_by": f"unknown field {group_by!r}"}})
    if spec.get("list") or spec["type"] in UNGROUPABLE_TYPES:
        kind = f"list of {spec['type']}" if spec.get("list") else spec["type"]
        raise ActionError(f"Cannot group by {group_by!r}, a {kind} field.",
                          extra={"fields": {"group_by": f"cannot group by a {kind} field"}})
    return spec


def _aggregate_expression(function: str, field: str | None, spec: dict | None):
    if function == "count":
        # COUNT(expression) skips NULL: with a field, records without a value are not counted.
        return Count(KT(f"data__{field}")) if field else Count("pk")
    text = KT(f"data__{field}")
    if spec["type"] in NUMBER_TYPES:
        # Numbers are stored as JSON numbers; cast their text to a number so the database does the math.
        exact = spec["type"] == "integer" and function != "avg"
        number = Cast(text, BigIntegerField() if exact else FloatField())
        if function == "sum":
            return Coalesce(Sum(number), Value(0), output_field=BigIntegerField() if exact else FloatField())
        return {"avg": Avg, "min": Min, "max": Max}[function](number)
    if spec["type"] == "datetime":
        from datastore.lookups import SortableDatetime

        # Canonical datetimes drop ".000000"; padded, they compare in time order as text.
        text = SortableDatetime(text)
    return {"min": Min, "max": Max}[function](text)


def _output(value, function: str, spec: dict | None):
    if value is None or function == "count":
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        # 12 significant digits drop the binary noise of float sums (0.1 + 0.2) and keep real precision.
        value = float(f"{value:.12g}")
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, str) and spec and spec["type"] == "datetime" and value.endswith(".000000Z"):
        return value[: -len(".000000Z")] + "Z"
    return value


def _group_key(raw, spec: dict):
    """A group's key as the field's own value (the database hands back text, or 1/0 for booleans on SQLite)."""
    from datastore.types import CoercionError, coerce_value

    if raw is None:
        return None
    try:
        return coerce_value({**spec, "list": False}, raw, source="query")
    except CoercionError:
        return raw
