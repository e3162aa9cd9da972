"""Reads of data types and records: get by name or id, search with filters, and the dict form of a record."""
import functools
import uuid
from collections.abc import Mapping
from typing import NamedTuple

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections, router
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from config.errors import ApplicationError, NotFoundError, RecordError
from config.sql import converted

from .filters import exact_fields, filter_q, order_by_expression
from .models import DataType, Record
from .types import iso_datetime


def data_type_get(*, name: str) -> DataType:
    """The data type with this name; NotFoundError if there is none."""
    try:
        return DataType.objects.get(name=name)
    except DataType.DoesNotExist:
        raise NotFoundError(f"No data type named {name!r}.") from None


def record_get(*, data_type: DataType, id) -> Record:
    """The record of `data_type` with this id; NotFoundError if there is none (or the id is malformed)."""
    try:
        return Record.objects.select_related("data_type").get(data_type=data_type, pk=uuid.UUID(str(id)))
    except (ValueError, Record.DoesNotExist):
        raise NotFoundError(f"No {data_type.name} record with id {id!r}.") from None


def record_find(
    *,
    data_type: DataType,
    filter: Mapping | None = None,
    order_by: str | None = None,
    limit: int | None = None,
    source: str = "json",
) -> QuerySet[Record]:
    """The records of `data_type` matching a filter, newest first unless `order_by` says otherwise."""
    # One filter() call: each one clones the query.
    queryset = Record.objects.select_related("data_type").filter(
        Q(data_type=data_type) & filter_q(data_type, filter, source=source)
    )
    if order_by:
        queryset = queryset.order_by(order_by_expression(data_type, order_by), "-created", "pk")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise RecordError("Invalid limit.", fields={"limit": "expected a whole number of records, 0 or more"})
        queryset = queryset[:limit]
    return queryset


# Data types as this process last read them, by name: records_search trusts a copy only as far as the rows
# it finds vouch for it (each carries its type's id and `modified`, joined), and re-reads it otherwise.
_recent_types: dict[str, DataType] = {}


def records_search(
    *, type_name: str, filter: Mapping | None, order_by: str | None, limit: int
) -> tuple[list[Record], int]:
    """The first `limit` matches of a search on the named type, and how many match in all. A search that
    finds rows costs one query (two when there are more than `limit`): the type is read again only when
    this process has no copy of it, the rows show it changed, or there are no rows to show it did not."""
    cached = _recent_types.get(type_name)
    rows = None
    if cached is not None:
        try:
            rows, count = _search(cached, filter, order_by, limit)
        except ApplicationError:
            pass  # perhaps the filter names a field added since: the current type decides
        else:
            if rows and _same_version(rows[0].data_type, cached):
                return rows, count
    current = _recent_types[type_name] = data_type_get(name=type_name)
    if rows == [] and _same_version(current, cached):
        return rows, count
    return _search(current, filter, order_by, limit)


def _same_version(data_type: DataType, copy: DataType) -> bool:
    return data_type.pk == copy.pk and data_type.modified == copy.modified


def _search(data_type: DataType, filter, order_by, limit: int) -> tuple[list[Record], int]:
    # The queryset is built only if the search needs it (a new shape, or one with no compiled form).
    full = functools.cache(lambda: record_find(data_type=data_type, filter=filter, order_by=order_by))
    # One row past the limit says whether there are more: only then is a COUNT query needed.
    rows = _first_rows(full, _where(data_type, filter, full), data_type, order_by, limit + 1)
    if len(rows) <= limit:
        return rows, len(rows)
    return rows[:limit], full().count()


def _built_once(shapes: dict, key, build):
    """shapes[key], built and kept the first time it is asked for (None too: the shape has no fast form)."""
    # Read once: another thread (the web's) may clear the dict between a check and a use.
    found = shapes.get(key, False)
    if found is False:
        if len(shapes) >= 512:
            shapes.clear()  # shapes are few in practice; a bound keeps an odd caller from growing it
        found = shapes[key] = build()
    return found


class _Where(NamedTuple):
    """A search's database, WHERE clause and its parameters."""

    db: str
    sql: str
    params: list


def _where(data_type: DataType, filter, full) -> "_Where | None":
    """The search's WHERE clause: for fields equal to values, from a clause compiled once per type and
    fields (_exact_clause); else compiled from the queryset. None when nothing can match."""
    db = router.db_for_read(Record)
    # Only PostgreSQL's JSON comparison is known to compile the same whatever the value's type.
    exact = exact_fields(data_type, filter) if connections[db].vendor == "postgresql" else None
    if exact is not None:
        names, values = exact
        clause = _built_once(_exact_clauses, (db, data_type.pk, names), lambda: _exact_clause(db, data_type, names))
        if clause is not None:
            return _Where(db, clause.sql, clause.params(values))
    queryset = full()
    query = queryset.query
    try:
        return _Where(queryset.db, *query.get_compiler(queryset.db).compile(query.where))
    except EmptyResultSet:
        return None  # an empty `in` list: nothing can match, as the ORM itself would answer
    except FullResultSet:
        return _Where(queryset.db, "", [])


class _ExactClause(NamedTuple):
    """The WHERE clause of a type's records whose given fields equal given values, for any values."""

    sql: str
    # Each parameter: (None, a constant of the clause, None), or (a value's position, the type that wraps it
    # and the wrapper's `dumps`), the type None when the value goes in as it is.
    slots: tuple[tuple, ...]

    def params(self, values: list) -> list:
        """The clause's parameters with these values (in the order of its field names)."""
        params = []
        for position, item, dumps in self.slots:
            if position is None:
                params.append(item)
            elif item is None:
                params.append(values[position])
            else:
                params.append(item(values[position], dumps))
        return params


# WHERE clauses of searches whose every condition is a field equal to a value, by database, type and field
# names: building and compiling the conditions through the ORM cost more than the search ran (bench O33).
_exact_clauses: dict[tuple, "_ExactClause | None"] = {}


def _exact_clause(db: str, data_type: DataType, names: tuple) -> "_ExactClause | None":
    """The clause record_find would compile for these fields, built with stand-in values whose parameters
    then say where each value goes; None where a stand-in is not found as one parameter of its own."""
    stand_ins = [f"engine-room-stand-in-{uuid.uuid4().hex}" for _ in names]
    conditions = Q()
    for name, stand_in in zip(names, stand_ins, strict=True):
        conditions &= Q(**{f"data__{name}__exact": stand_in})
    query = Record.objects.using(db).filter(Q(data_type=data_type) & conditions).query
    try:
        sql, params = query.get_compiler(db).compile(query.where)
    except (EmptyResultSet, FullResultSet):
        return None
    position_of = {stand_in: position for position, stand_in in enumerate(stand_ins)}
    slots = []
    for param in params:
        wrapped = getattr(param, "obj", param)
        if isinstance(wrapped, str) and wrapped in position_of:
            position = position_of.pop(wrapped)
            if param is wrapped:
                slots.append((position, None, None))
            elif hasattr(param, "dumps"):  # psycopg's Jsonb: the value wrapped as Django wraps it
                slots.append((position, type(param), param.dumps))
            else:
                return None
        elif any(stand_in in repr(wrapped) for stand_in in stand_ins):
            return None  # a stand-in inside another parameter: its value's place cannot be filled in
        else:
            slots.append((None, param, None))
    return _ExactClause(sql, tuple(slots)) if not position_of else None


# Statements of searches by what shapes them besides their WHERE clause, and that clause's SQL: a search
# repeats its shape with new values, and compiling a whole query costs more than running it (bench O24).
_statements: dict[tuple, "_Statement | None"] = {}


def _first_rows(full, where: _Where | None, data_type: DataType, order_by, count: int) -> list[Record]:
    """The search's first `count` rows with their data type, compiled in full once per shape; `full`
    gives its queryset, built only when the shape is new or cannot be compiled so."""
    if where is None:
        return []
    if not where.sql:
        return list(full()[:count])
    key = (where.db, data_type.pk, data_type.modified, order_by, count, where.sql)
    statement = _built_once(_statements, key, lambda: _statement(full(), data_type, where.sql, len(where.params), count))
    if statement is None:
        return list(full()[:count])
    rows = statement.records(where.db, where.params)
    # The type changed since this process read it: the rows share one fresh read of it, not one each.
    changed = any(not row.type_current for row in rows)
    fresh = DataType.objects.using(where.db).filter(pk=data_type.pk).first() if changed else None
    for row in rows:
        if row.type_current:
            row.data_type = data_type
        elif fresh is not None:
            row.data_type = fresh
    return rows


class _Statement(NamedTuple):
    """A search's SQL around its WHERE clause's parameters, and how its rows become Records."""

    sql: str
    before: tuple
    after: tuple
    # For config.sql.converted, with the calling thread's connection: a statement is shared by every thread.
    converters: tuple[tuple[int, object, list], ...]
    attnames: list[str]
    # How many of the WHERE clause's first parameters the SQL holds written in (the type's id, or none).
    written: int = 0

    def records(self, alias: str, where_params: list) -> list[Record]:
        """The rows as Records with `type_current` set, read straight from the cursor: a raw queryset's
        per-call setup (its columns and model init order) cost a third of the search (bench O31)."""
        db = connections[alias]
        with db.cursor() as cursor:
            cursor.execute(self.sql, [*self.before, *where_params[self.written:], *self.after])
            rows = cursor.fetchall()
        width = len(self.attnames)
        records = []
        for row in rows:
            if self.converters:
                row = converted(row, self.converters, db)
            record = Record.from_db(alias, self.attnames, row[:width])
            record.type_current = row[width]
            records.append(record)
        return records


def _statement(queryset: QuerySet[Record], data_type: DataType, where_sql: str, where_count: int, count: int):
    """The search's _Statement; None if its WHERE clause's parameters cannot be told apart."""
    # The rows carry whether their type is still `data_type`'s version, in place of the joined type itself.
    current = Q(data_type__modified=data_type.modified)
    shaped = queryset.select_related(None).annotate(type_current=ExpressionWrapper(current, BooleanField()))
    shaped = shaped[:count]
    compiler = shaped.query.get_compiler(queryset.db)
    sql, params = compiler.as_sql()
    if sql.count(where_sql) != 1 or sql.count("%s") != len(params):
        return None
    # Record's columns, in order, then the annotation: the layout records() reads.
    fields = compiler.klass_info["select_fields"]
    if fields != list(range(len(fields))) or compiler.annotation_col_map != {"type_current": len(fields)}:
        return None
    start = sql[: sql.index(where_sql)].count("%s")
    written = 0
    pieces = sql.split("%s")
    qn = connections[queryset.db].ops.quote_name
    type_column = f"{qn(Record._meta.db_table)}.{qn(Record._meta.get_field('data_type').column)} = "
    if pieces[start].endswith(type_column) and type(params[start]) is int and params[start] == data_type.pk:
        # The type's id written in: with it a parameter, PostgreSQL's one plan for all values (a prepared
        # statement's generic plan) had to guess the type's share of the records, looked worse than each
        # search's own plan, and so it planned every search again, which cost it more than the search ran.
        sql = "%s".join([*pieces[:start], f"{pieces[start]}{data_type.pk:d}{pieces[start + 1]}", *pieces[start + 2:]])
        written = 1
    converters = tuple((position, expression, functions) for position, (functions, expression)
                       in compiler.get_converters([column for column, _, _ in compiler.select]).items())
    attnames = [column.target.attname for column, _, _ in compiler.select[: len(fields)]]
    return _Statement(sql, tuple(params[:start]), tuple(params[start + where_count:]), converters, attnames, written)


def record_count(*, data_type: DataType, filter: Mapping | None = None, source: str = "json") -> int:
    """How many records of `data_type` match a filter."""
    return Record.objects.filter(Q(data_type=data_type) & filter_q(data_type, filter, source=source)).count()


def record_to_dict(record: Record) -> dict:
    """A record as expressions and API output see it: id, type, created, modified, then every field."""
    return {
        "id": str(record.pk),
        "type": record.data_type.name,
        "created": iso_datetime(record.created),
        "modified": iso_datetime(record.modified),
        **{field["name"]: record.data.get(field["name"]) for field in record.data_type.fields},
    }
