"""Writes of data types and records; every record change sends `signals.record_changed`."""
import functools
import uuid
from collections.abc import Mapping
from itertools import batched

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone

from config.errors import DefinitionError, NotFoundError, RecordError
from config.sql import Compiled, compiled_once

from .filters import filter_q
from .lookups import JSONKeysUpdate
from .models import DataType, Record
from .selectors import record_to_dict
from .signals import record_changed
from .types import NAME_RE, CoercionError, coerce_value, is_empty, record_type, validate_field_spec

FIELD_KEYS = frozenset({"name", "type", "list", "required", "description"})
# Every record dict carries these keys, so no field may take their names.
RESERVED_NAMES = frozenset({"id", "type", "created", "modified"})
BATCH_SIZE = 500


# --- Data types -----------------------------------------------------------------------------


def data_type_create(*, name: str, fields: list) -> DataType:
    """A new data type with validated fields; DefinitionError names each bad one."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise DefinitionError(
            "Invalid data type name.", fields={"name": "must match ^[a-z][a-z0-9_]{0,62}$"}
        )
    cleaned = _clean_field_specs(fields)
    try:
        with transaction.atomic():
            return DataType.objects.create(name=name, fields=cleaned)
    except IntegrityError:
        raise DefinitionError(
            f"A data type named {name!r} already exists.", fields={"name": "already exists"}
        ) from None


@transaction.atomic
def data_type_update(*, data_type: DataType, fields: list) -> DataType:
    """Replace the fields of a data type, converting stored values of retyped fields and dropping removed ones."""
    cleaned = _clean_field_specs(fields)
    old, new = data_type.field_map(), {field["name"]: field for field in cleaned}
    retyped = {
        name: new[name]
        for name in new.keys() & old.keys()
        if (new[name]["type"], new[name]["list"]) != (old[name]["type"], old[name].get("list", False))
    }
    removed = old.keys() - new.keys()
    if retyped or removed:
        _migrate_values(data_type, old, retyped, removed, cleaned)
    data_type.fields = cleaned
    data_type.save(update_fields=["fields", "modified"])
    return data_type


def data_type_delete(*, data_type: DataType) -> None:
    """Delete a data type with its records, unless another type's fields refer to it."""
    referring = [
        f"{other.name}.{field['name']}"
        for other in DataType.objects.exclude(pk=data_type.pk)
        for field in other.fields
        if record_type(field.get("type")) == data_type.name
    ]
    if referring:
        raise DefinitionError(
            f"Data type {data_type.name!r} is referred to by {', '.join(referring)}.",
            fields={"name": f"referred to by {', '.join(referring)}"},
        )
    data_type.delete()


def _clean_field_specs(fields) -> list[dict]:
    if not isinstance(fields, list):
        raise DefinitionError("Invalid data type fields.", fields={"fields": "must be a list"})
    cleaned, errors, seen = [], {}, set()
    for index, spec in enumerate(fields):
        path = f"fields[{index}]"
        problems = validate_field_spec(spec)
        if isinstance(spec, dict) and (unknown := set(spec) - FIELD_KEYS):
            problems[""] = f"unknown key(s): {', '.join(sorted(unknown))}"
        if "name" not in problems:
            name = spec["name"]
            if "__" in name:
                problems["name"] = "must not contain '__' (it separates a field from its filter lookup)"
            elif name in RESERVED_NAMES:
                problems["name"] = f"{name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})"
            elif name in seen:
                problems["name"] = f"duplicate field name {name!r}"
            seen.add(name)
        errors.update({f"{path}.{key}" if key else path: message for key, message in problems.items()})
        if not problems:
            cleaned.append(
                {
                    "name": spec["name"],
                    "type": spec["type"],
                    "list": spec.get("list", False),
                    "required": spec.get("required", False),
                    "description": spec.get("description") or "",
                }
            )
    if errors:
        raise DefinitionError("Invalid data type fields.", fields=errors)
    return cleaned


def _migrate_values(data_type, old: dict, retyped: dict, removed, cleaned: list) -> None:
    """Rewrite stored values for a field change; DefinitionError if some value cannot take its new type."""
    failures: dict[str, list[str]] = {}
    changed = []
    for record in Record.objects.filter(data_type=data_type).select_for_update().iterator():
        data = {key: value for key, value in record.data.items() if key not in removed}
        for name, field in retyped.items():
            if data.get(name) is None:
                continue
            try:
                data[name] = _converted(old[name], field, data[name])
            except CoercionError as exc:
                failures.setdefault(name, []).append(f"record {record.pk}: {exc}")
        if data != record.data:
            record.data = data
            changed.append(record)
    if failures:
        positions = {field["name"]: index for index, field in enumerate(cleaned)}
        raise DefinitionError(
            "Stored values do not fit the new field types.",
            fields={
                f"fields[{positions[name]}].type": f"{len(messages)} stored value(s) do not convert, e.g. {messages[0]}"
                for name, messages in failures.items()
            },
        )
    # A change of schema is not a change of records: no record_changed, `modified` stays.
    Record.objects.bulk_update(changed, ["data"], batch_size=BATCH_SIZE)


def _converted(old: dict, new: dict, value):
    if new["list"] and not old.get("list"):
        value = [value]
    elif old.get("list") and not new["list"]:
        if len(value) > 1:
            raise CoercionError(f"a list of {len(value)} values cannot become one value")
        value = value[0] if value else None
    return coerce_value(new, value)


# --- Records --------------------------------------------------------------------------------


@transaction.atomic
def record_create(*, data_type: DataType, fields: Mapping) -> Record:
    """A new record of `data_type`; RecordError names every bad, unknown or missing required field."""
    values = _clean_values(data_type, fields, creating=True)
    record = Record.objects.create(data_type=data_type, data=_merged({}, values))
    _send("created", record_to_dict(record), before=None)
    return record


@transaction.atomic
def record_update(*, record: Record, fields: Mapping) -> Record:
    """Change the given fields of a record (null clears one); an update that changes nothing writes nothing."""
    data_type = record.data_type
    values = _clean_values(data_type, fields, creating=False)
    try:
        current = Record.objects.select_for_update().get(pk=record.pk)
    except Record.DoesNotExist:
        raise NotFoundError(f"No {data_type.name} record with id {str(record.pk)!r}.") from None
    current.data_type = data_type
    _update_locked(current, values)
    record.data, record.modified = current.data, current.modified
    return record


@transaction.atomic(savepoint=False)
def record_update_by_id(*, type_name: str, id, fields: Mapping) -> Record:
    """record_update for the record of the named type with this id, found and locked with its type in one
    query (the update_record action's: two queries fewer than reading the type, then the record). Inside
    a transaction it adds no savepoint: an error rolls back the caller's whole transaction (a step's)."""
    try:
        pk = uuid.UUID(str(id))
    except ValueError:
        pk = None
    current = _locked_record(type_name, pk) if pk is not None else None
    if current is None:
        if not DataType.objects.filter(name=type_name).exists():
            raise NotFoundError(f"No data type named {type_name!r}.") from None
        raise NotFoundError(f"No {type_name} record with id {id!r}.") from None
    _update_locked(current, _clean_values(current.data_type, fields, creating=False))
    return current


def _locked_record(type_name: str, pk: uuid.UUID) -> Record | None:
    """The record of the named type with this id, with its type, locked for the caller's transaction
    (FOR UPDATE where the database has it), through a statement compiled once per connection wrapper:
    compiling the query through the ORM cost more than running it (bench O27)."""
    db = connections[router.db_for_write(Record)]
    statement = _lock_statement(db)
    rows = statement.rows(db, {"name": type_name, "pk": Record._meta.pk.get_db_prep_value(pk, db)})
    if not rows:
        return None
    (row,) = rows
    split = len(Record._meta.concrete_fields)
    record = Record.from_db(db.alias, _attnames(Record), row[:split])
    record.data_type = DataType.from_db(db.alias, _attnames(DataType), row[split:])
    return record


def _attnames(model) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


@functools.lru_cache(maxsize=16)
def _lock_statement(db) -> Compiled:
    """_locked_record's statement: the record's columns, then its type's."""
    blank = uuid.UUID(int=0)
    queryset = (Record.objects.db_manager(db.alias).select_related("data_type").select_for_update(of=("self",))
                .filter(data_type__name="name", pk=blank))
    return compiled_once(queryset, {"name": "name", "pk": Record._meta.pk.get_db_prep_value(blank, db)})


def _save_data(record: Record) -> None:
    """save(update_fields=["data", "modified"]) through a statement built once per connection wrapper
    (no model signals: nothing listens to a Record's; record_changed is the datastore's own)."""
    db = connections[router.db_for_write(Record)]
    meta = Record._meta
    params = [field.get_db_prep_save(field.pre_save(record, False), db) for field in _data_fields()]
    with db.cursor() as cursor:
        cursor.execute(_data_update_sql(db), [*params, meta.pk.get_db_prep_value(record.pk, db)])


def _data_fields() -> tuple:
    return Record._meta.get_field("data"), Record._meta.get_field("modified")


@functools.lru_cache(maxsize=16)
def _data_update_sql(db) -> str:
    qn = db.ops.quote_name
    sets = ", ".join(f"{qn(field.column)} = %s" for field in _data_fields())
    return f"UPDATE {qn(Record._meta.db_table)} SET {sets} WHERE {qn(Record._meta.pk.column)} = %s"


def _update_locked(current: Record, values: dict) -> None:
    """Write cleaned values to a record locked by this transaction, unless they change nothing."""
    data = _merged(current.data, values)
    if data != current.data:
        before = record_to_dict(current)
        current.data = data
        _save_data(current)
        _send("updated", record_to_dict(current), before=before)


@transaction.atomic
def record_delete(*, record: Record) -> None:
    """Delete one record."""
    last = record_to_dict(record)
    deleted, _ = Record.objects.filter(pk=record.pk).delete()
    if deleted:
        _send("deleted", last, before=None)


@transaction.atomic
def records_update(*, data_type: DataType, filter: Mapping | None, fields: Mapping) -> int:
    """Set the same fields on every matching record in the database; returns how many records matched."""
    q = filter_q(data_type, filter)
    values = _clean_values(data_type, fields, creating=False)
    rows = list(Record.objects.filter(data_type=data_type).filter(q).select_for_update())
    changes = [(row, data) for row in rows if (data := _merged(row.data, values)) != row.data]
    now = timezone.now()
    update = JSONKeysUpdate(
        F("data"),
        values={key: value for key, value in values.items() if value is not None},
        remove=[key for key, value in values.items() if value is None],
    )
    for chunk in batched([row.pk for row, _ in changes], BATCH_SIZE):
        Record.objects.filter(pk__in=chunk).update(data=update, modified=now)
    for row, data in changes:
        row.data_type = data_type
        before = record_to_dict(row)
        row.data, row.modified = data, now
        _send("updated", record_to_dict(row), before=before)
    return len(rows)


@transaction.atomic
def records_delete(*, data_type: DataType, filter: Mapping | None) -> int:
    """Delete every matching record; returns how many were deleted."""
    q = filter_q(data_type, filter)
    rows = list(Record.objects.filter(data_type=data_type).filter(q).select_for_update())
    for chunk in batched([row.pk for row in rows], BATCH_SIZE):
        Record.objects.filter(pk__in=chunk).delete()
    for row in rows:
        row.data_type = data_type
        _send("deleted", record_to_dict(row), before=None)
    return len(rows)


def _clean_values(data_type: DataType, fields, *, creating: bool) -> dict:
    """Canonical values for the given fields; RecordError naming every bad, unknown or missing one."""
    if not isinstance(fields, Mapping):
        raise RecordError("Record fields must be an object.", fields={"fields": "expected an object"})
    specs = data_type.field_map()
    values, errors = {}, {}
    for name, value in fields.items():
        if name not in specs:
            errors[f"fields.{name}"] = f"unknown field; {data_type.name} has {', '.join(specs) or 'no fields'}"
            continue
        try:
            values[name] = coerce_value(specs[name], value)
        except CoercionError as exc:
            errors[f"fields.{name}"] = str(exc)
    for name, spec in specs.items():
        given = name in values
        if spec.get("required") and (creating or given) and is_empty(values.get(name)) and f"fields.{name}" not in errors:
            errors[f"fields.{name}"] = "required"
    errors.update(_missing_references(specs, values))
    if errors:
        raise RecordError(f"Invalid {data_type.name} fields.", fields=errors)
    return values


def _missing_references(specs: dict, values: dict) -> dict[str, str]:
    """Errors for `record:<type>` values whose id is not a record of that type, by "fields.<name>"."""
    wanted: dict[str, set[str]] = {}
    for name, value in values.items():
        target = record_type(specs[name]["type"])
        if target is not None and not is_empty(value):
            wanted.setdefault(target, set()).update(value if isinstance(value, list) else [value])
    existing = {
        target: {str(pk) for pk in Record.objects.filter(data_type__name=target, pk__in=ids).values_list("pk", flat=True)}
        for target, ids in wanted.items()
    }
    errors = {}
    for name, value in values.items():
        target = record_type(specs[name]["type"])
        if target is None or is_empty(value):
            continue
        missing = [id for id in (value if isinstance(value, list) else [value]) if id not in existing[target]]
        if missing:
            errors[f"fields.{name}"] = f"no {target} record with id {missing[0]!r}"
    return errors


def _merged(data: dict, values: dict) -> dict:
    # Stored records never hold JSON null: an absent key is "no value", which filters rely on.
    return {key: value for key, value in {**data, **values}.items() if value is not None}


def _send(kind: str, record: dict, *, before: dict | None) -> None:
    record_changed.send(sender=Record, kind=kind, record=record, before=before, data_type=record["type"])
