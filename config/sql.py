"""Plain multi-row INSERTs for the hot paths, where building the statement through the ORM's compiler
cost more than running it: the statement is built once per connection wrapper, model and row count."""
import datetime
import decimal
import functools
import os
import threading
import uuid
from typing import NamedTuple

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, InterfaceError, OperationalError, connections, models, router
from django.db.models import NOT_PROVIDED, Field, JSONField
from django.db.models.expressions import DatabaseDefault

from config.database import connection_lost


def _columns(model) -> list:
    # An auto-incremented primary key is the database's to fill; a UUID key is written.
    return [field for field in model._meta.concrete_fields if not (field.primary_key and field.db_returning)]


def _filled(field, obj):
    """The value save() would write for field: defaults and auto_now filled."""
    value = field.pre_save(obj, True)
    if isinstance(value, DatabaseDefault):
        # A field left to its db_default: the same literal (an expression default is not supported here),
        # also set on the object, as save() would have read it back.
        value = getattr(field.db_default, "value", field.db_default)
        setattr(obj, field.attname, value)
    return value


# Values that go into rows_json's JSON as they are (exact types: a subclass, an enum member say, takes the
# longer way, which comes to the same for str subclasses).
_AS_IS = frozenset({str, int, float, bool, type(None)})


# Fields whose get_db_prep_save leaves a value of these exact types as it is on every backend (to_python's
# own type, no adapter): row_params passes such a value, and None, without the call. Not the integer fields:
# PostgreSQL wraps their values in typed adapters (Int4, Int8), which its prepared statements are keyed on.
# Exact field classes only: a subclass may prepare values its own way.
_PREPARED_AS_IS = {
    models.CharField: (str,), models.TextField: (str,), models.BooleanField: (bool,), models.FloatField: (float,),
}


def _read_as_set(field) -> bool:
    """Whether save() writes the attribute as it is (no auto_now, no db_default left unset)."""
    return type(field).pre_save is Field.pre_save and field.db_default is NOT_PROVIDED


@functools.cache
def _params_plan(model) -> tuple:
    """Per column: (field, attname, read as set, the value types passed as they are), made once per model."""
    plan = []
    for field in _columns(model):
        as_is = (type(None), *_PREPARED_AS_IS.get(type(field), ())) if not isinstance(field, JSONField) else ()
        plan.append((field, field.attname, _read_as_set(field), as_is))
    return tuple(plan)


# One encoder for every row: json.dumps(cls=…) builds a new one on each call.
_ENCODER = DjangoJSONEncoder()


@functools.cache
def _row_plan(model) -> tuple:
    """Per column: (column, attname, the field unless read as set, its JSON key if a JSON column), made once
    per model."""
    # Working this out for every value of every row cost more than the rest of a run's step logs (O38).
    return tuple((field.column, field.attname, None if _read_as_set(field) else field,
                  _ENCODER.encode(field.column) if isinstance(field, JSONField) else None)
                 for field in _columns(model))


def column_count(model) -> int:
    """How many parameters one row of model takes."""
    return len(_columns(model))


def columns_sql(db, model) -> str:
    """The column list of insert_sql's rows, in its order."""
    return ", ".join(db.ops.quote_name(field.column) for field in _columns(model))


@functools.lru_cache(maxsize=256)
def insert_sql(db, model, rows: int) -> str:
    """`INSERT INTO table (columns) VALUES (…), …` for `rows` rows."""
    row = f"({', '.join(['%s'] * column_count(model))})"
    return (f"INSERT INTO {db.ops.quote_name(model._meta.db_table)} ({columns_sql(db, model)}) "
            f"VALUES {', '.join([row] * rows)}")


def recordset_sql(db, model, alias: str) -> str:
    """`jsonb_to_recordset(%s::jsonb) AS alias(column type, …)` over rows_json's parameter, in insert_sql's
    column order: on PostgreSQL, any number of rows in one parameter, so that the statement stays the same
    (psycopg caches its conversion only for statements of at most 50 parameters) and short to parse."""
    qn = db.ops.quote_name
    columns = ", ".join(f"{qn(field.column)} {field.db_type(db)}" for field in _columns(model))
    return f"jsonb_to_recordset(%s::jsonb) AS {qn(alias)}({columns})"


class EncodedJSON(str):
    """A JSON column's value already encoded as JSON text (a step log's input or output, encoded once to
    measure it): rows_json and row_params write the text as it is instead of decoding and encoding it again."""

    __slots__ = ()


def rows_json(model, objs: list) -> str:
    """objs' rows as one JSON array for recordset_sql, with defaults and auto_now filled as save() would;
    a JSON column's value goes in as it is (Django's encoder for what JSON lacks; EncodedJSON's text
    verbatim), a JSON null as NULL."""
    plan = _row_plan(model)
    rows, encoded = [], []
    for obj in objs:
        row, texts = {}, []
        for column, attname, field, json_key in plan:
            value = getattr(obj, attname) if field is None else _filled(field, obj)
            if json_key is not None and type(value) is EncodedJSON:
                texts.append(f"{json_key}:{value}")
            elif json_key is not None or type(value) in _AS_IS:
                row[column] = value
            elif isinstance(value, datetime.datetime | datetime.date | datetime.time):
                row[column] = value.isoformat()  # whole microseconds, unlike DjangoJSONEncoder
            elif isinstance(value, uuid.UUID | decimal.Decimal):
                row[column] = str(value)
            else:
                row[column] = value
        rows.append(row)
        encoded.append(texts)
    if not any(encoded):
        return _ENCODER.encode(rows)
    # Each object's other columns encoded, and the encoded ones added before its closing brace.
    return "[" + ",".join(
        _ENCODER.encode(row)[:-1] + ("," if row and texts else "") + ",".join(texts) + "}"
        for row, texts in zip(rows, encoded, strict=True)
    ) + "]"


def _encoded_param(text: EncodedJSON, db):
    """EncodedJSON as a JSON column's parameter: the text itself, which PostgreSQL's Jsonb is told not to encode."""
    if db.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        return Jsonb(text, dumps=str)
    return str(text)


def row_params(model, objs: list, db) -> list:
    """The parameters of objs' rows, in insert_sql's order, with defaults and auto_now filled."""
    plan, params = _params_plan(model), []
    for obj in objs:
        for field, attname, plain, as_is in plan:
            value = getattr(obj, attname) if plain else _filled(field, obj)
            if type(value) in as_is:
                params.append(value)
            elif type(value) is EncodedJSON and isinstance(field, JSONField):
                # JSON null as no value, as rows_json's jsonb_to_recordset and Django store a None.
                params.append(None if value == "null" else _encoded_param(value, db))
            else:
                params.append(field.get_db_prep_save(value, db))
    return params


_LEFT_OUT = object()


@functools.cache
def _build_plan(model) -> tuple:
    """Per concrete field: (its attname, its name if it is a foreign key, the field), made once per model."""
    return tuple((field.attname, field.name if field.is_relation else None, field)
                 for field in model._meta.concrete_fields)


def built(model, **values):
    """model(**values), built by position as from_db builds an instance (on the hot paths Model.__init__'s
    keyword path cost more than the rest of a webhook call's run row or a step's log row). A key is a
    field's attname, or a foreign key's name with its object, which is cached on the instance as the
    keyword path caches it; a field left out takes its default."""
    args, related = [], []
    for attname, name, field in _build_plan(model):
        value = values.pop(attname, _LEFT_OUT)
        if value is _LEFT_OUT:
            if name is not None and name in values:
                obj = values.pop(name)
                value = None if obj is None else getattr(obj, field.target_field.attname)
                related.append((field, obj))
            else:
                value = field.get_default()
        args.append(value)
    if values:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(values))}")
    instance = model(*args)
    for field, obj in related:
        field.set_cached_value(instance, obj)
    return instance


def mark_written(objs: list, db) -> None:
    """Mark objs as save() leaves a written row."""
    for obj in objs:
        obj._state.adding, obj._state.db = False, db.alias


@functools.lru_cache(maxsize=64)
def insert_json_sql(db, model) -> str:
    """PostgreSQL: `INSERT INTO table (columns) SELECT … FROM jsonb_to_recordset(%s::jsonb)` for rows_json."""
    return (f"INSERT INTO {db.ops.quote_name(model._meta.db_table)} ({columns_sql(db, model)}) "
            f"SELECT given.* FROM {recordset_sql(db, model, 'given')}")


def insert_rows(model, objs: list) -> None:
    """INSERT objs as save(force_insert=True) would (defaults and auto_now filled, the objects marked
    written; no signals sent, ids of auto-incremented keys not read back), in one statement or a few past
    the database's parameter limit. On PostgreSQL several rows travel as one JSON parameter: psycopg took
    longer to convert 500 rows' thousands of parameters than the server took to insert them."""
    db = connections[router.db_for_write(model)]
    if db.vendor == "postgresql" and len(objs) > 1:
        with db.cursor() as cursor:
            cursor.execute(insert_json_sql(db, model), [rows_json(model, objs)])
        mark_written(objs, db)
        return
    per_statement = max(1, (db.features.max_query_params or 2**16 - 1) // column_count(model))
    with db.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start:start + per_statement]
            cursor.execute(insert_sql(db, model, len(chunk)), row_params(model, chunk, db))
    mark_written(objs, db)


def _found_written(model, objs: list, db) -> bool:
    """Whether objs' rows are there (by primary key), a statement whose answer was lost having written them;
    if so they are marked written."""
    if not model._default_manager.using(db.alias).filter(pk__in=[obj.pk for obj in objs]).exists():
        return False
    mark_written(objs, db)
    return True


def insert_row(model, obj) -> None:
    """insert_rows for one row; outside a transaction, a connection that died while idle is replaced and
    the INSERT tried once more, and a row that the first try wrote before its answer was lost counts as
    written (found by primary key). So when it is a request's first statement (a key-less webhook call's,
    with warm caches) it does what Django's health check would, and the check's round trip is skipped."""
    db = connections[router.db_for_write(model)]
    if not db.in_atomic_block and db.connection is not None:
        db.health_check_done = True
    try:
        insert_rows(model, [obj])
    except (OperationalError, InterfaceError) as exc:
        if db.in_atomic_block or not connection_lost(exc):
            raise
        db.close()
        try:
            insert_rows(model, [obj])
        except IntegrityError:
            if not _found_written(model, [obj], db):
                raise


class _Ticket:
    """A row waiting in a GroupInsert, what became of it, and the error of a row its own thread wrote."""

    __slots__ = ("obj", "done", "state", "error")

    def __init__(self, obj):
        # Until a writer says otherwise, the row is its own thread's to write (see _write_waiting's finally).
        self.obj, self.done, self.state, self.error = obj, threading.Event(), "alone", None


class GroupInsert:
    """Rows of one model that this process's threads insert at the same moment, in one INSERT (docs/api.md)."""

    # A thread arriving while no INSERT is under way writes its row at once; those arriving meanwhile wait,
    # and the first of them then writes all of theirs, so one commit, and one wait for its flush to disk,
    # serves the batch. Each thread returns once its own row is committed. Outside transactions only: the
    # batch commits in the writing thread's connection. One instance per model and process, made at import
    # (register_at_fork keeps it for good).

    def __init__(self, model):
        self.model = model
        self._lock = threading.Lock()
        self._waiting: list[_Ticket] = []
        self._busy = False
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        # A fork copies the lock and the queue as another thread may have left them.
        self._lock, self._waiting, self._busy = threading.Lock(), [], False

    def insert(self, obj) -> None:
        """insert_row, shared with the rows other threads insert meanwhile."""
        if connections[router.db_for_write(self.model)].in_atomic_block:
            insert_row(self.model, obj)  # another thread's commit must not carry this transaction's row
            return
        ticket = _Ticket(obj)
        with self._lock:
            self._waiting.append(ticket)
            lead, self._busy = not self._busy, True
        if not lead:
            ticket.done.wait()
        if lead or ticket.state == "lead":
            self._write_waiting(ticket)
        if ticket.error is not None:
            raise ticket.error
        if ticket.state == "alone":
            insert_row(self.model, obj)
        elif ticket.state == "unknown":
            self._insert_unless_written(obj)

    def _write_waiting(self, ticket: _Ticket) -> None:
        """Write the rows waiting (this thread's among them), then hand the next batch to its first row."""
        with self._lock:
            batch, self._waiting = self._waiting, []
        state = "alone"
        try:
            if len(batch) == 1:
                try:
                    insert_row(self.model, ticket.obj)  # with its retry after a lost connection
                    state = "written"
                except Exception as exc:  # raised in this thread once the next batch is under way
                    ticket.error = exc
            else:
                state = self._write_batch([waiting.obj for waiting in batch])
        finally:
            # Whatever happened, every waiting thread wakes and the next batch gets a writer: a thread that
            # never learns its row's fate writes it alone (the state's default).
            for waiting in batch:
                waiting.state = state
                if waiting is not ticket:
                    waiting.done.set()
            with self._lock:
                if self._waiting:
                    # The first row to arrive meanwhile writes the next batch, in its own thread.
                    self._waiting[0].state = "lead"
                    self._waiting[0].done.set()
                else:
                    self._busy = False

    def _write_batch(self, objs: list) -> str:
        """One INSERT of objs: "written", "alone" (refused: each row again by its thread) or "unknown"."""
        db = connections[router.db_for_write(self.model)]
        if db.connection is not None:
            db.health_check_done = True  # as insert_row: a lost connection is dealt with below
        try:
            insert_rows(self.model, objs)
            return "written"
        except (OperationalError, InterfaceError) as exc:
            if not connection_lost(exc):
                return "alone"
        except Exception:
            return "alone"
        # The connection died under the statement, which wrote every row or none; rows not seen yet may still
        # be committing, so each thread then writes its own, a key already taken counting as written.
        try:
            db.close()
            if _found_written(self.model, objs, db):
                return "written"
        except Exception:  # the database is still away: each thread tries its row, and answers for it
            pass
        return "unknown"

    def _insert_unless_written(self, obj) -> None:
        """insert_row for a row a lost batch may have written: already there (its key taken), it counts as written."""
        try:
            insert_row(self.model, obj)
        except IntegrityError:
            if not _found_written(self.model, [obj], connections[router.db_for_write(self.model)]):
                raise


def converted(row, converters, db) -> list:
    """A fetched row's values as the ORM would convert them; `converters` holds (position, expression,
    functions) for each column that has any, applied with `db`, the calling thread's connection."""
    values = list(row)
    for position, expression, functions in converters:
        for convert in functions:
            values[position] = convert(values[position], expression, db)
    return values


class Compiled(NamedTuple):
    """A queryset's SQL compiled once, to be run again with other values (compiled_once)."""

    sql: str
    # Each parameter in order: (True, the name of the value it takes) or (False, the constant it keeps).
    slots: tuple[tuple[bool, object], ...]
    compiler: object
    converters: dict

    def rows(self, db, values: dict) -> list:
        """The rows of the statement with these values (by name), converted as the ORM would convert them."""
        with db.cursor() as cursor:
            cursor.execute(self.sql, [values[item] if named else item for named, item in self.slots])
            rows = cursor.fetchall()
        if not self.converters or not rows:
            return rows
        return [tuple(row) for row in self.compiler.apply_converters(rows, self.converters)]


def compiled_once(queryset, sentinels: dict[str, object]) -> Compiled:
    """queryset compiled for reuse: built with a distinct sentinel value (as prepared for the database) in
    place of each value that changes, named by `sentinels`, whose names then say which parameter is which;
    every other parameter is a constant of the query. For the hot paths whose query Django compiled on
    every call for longer than the database took to run it."""
    compiler = queryset.query.get_compiler(queryset.db)
    sql, params = compiler.as_sql()
    by_value = {_key(value): name for name, value in sentinels.items()}
    slots = tuple((True, by_value[_key(param)]) if _key(param) in by_value else (False, param) for param in params)
    if sorted(item for named, item in slots if named) != sorted(sentinels):
        raise AssertionError(f"Cannot tell the parameters of {sql!r} apart: {params!r}")
    converters = compiler.get_converters([column for column, _, _ in compiler.select])
    return Compiled(sql, slots, compiler, converters)


def _key(value) -> tuple:
    """A parameter as compiled_once matches it: by type and value (True is not 1), unhashable ones by repr."""
    try:
        hash(value)
    except TypeError:
        return type(value), repr(value)
    return type(value), value
