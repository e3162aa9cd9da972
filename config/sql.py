"""Plain multi-row INSERTs for the hot paths, where building the statement through the ORM's compiler
cost more than running it: the statement is built once per connection wrapper, model and row count."""
import functools

from django.db import connections, router
from django.db.models.expressions import DatabaseDefault


def _columns(model) -> list:
    # An auto-incremented primary key is the database's to fill; a UUID key is written.
    return [field for field in model._meta.concrete_fields if not (field.primary_key and field.db_returning)]


def _value(field, obj, db):
    value = field.pre_save(obj, True)
    if isinstance(value, DatabaseDefault):
        # A field left to its db_default: the same literal (an expression default is not supported here),
        # also set on the object, as save() would have read it back.
        value = getattr(field.db_default, "value", field.db_default)
        setattr(obj, field.attname, value)
    return field.get_db_prep_save(value, db)


def column_count(model) -> int:
    """How many parameters one row of model takes."""
    return len(_columns(model))


def columns_sql(db, model) -> str:
    """The column list of insert_sql's rows, in its order."""
    return ", ".join(db.ops.quote_name(field.column) for field in _columns(model))


@functools.lru_cache(maxsize=256)
def insert_sql(db, model, rows: int, *, typed: bool = False) -> str:
    """`INSERT INTO table (columns) VALUES (…), …` for `rows` rows; typed, the VALUES list alone, each
    placeholder cast to its column's type, for a statement that inserts by SELECT from it."""
    fields = _columns(model)
    if typed:
        row = f"({', '.join(f'CAST(%s AS {field.db_type(db)})' for field in fields)})"
        return f"VALUES {', '.join([row] * rows)}"
    row = f"({', '.join(['%s'] * len(fields))})"
    return (f"INSERT INTO {db.ops.quote_name(model._meta.db_table)} ({columns_sql(db, model)}) "
            f"VALUES {', '.join([row] * rows)}")


def row_params(model, objs: list, db) -> list:
    """The parameters of objs' rows, in insert_sql's order, with defaults and auto_now filled."""
    fields = _columns(model)
    return [_value(field, obj, db) for obj in objs for field in fields]


def mark_written(objs: list, db) -> None:
    """Mark objs as save() leaves a written row."""
    for obj in objs:
        obj._state.adding, obj._state.db = False, db.alias


def insert_rows(model, objs: list) -> None:
    """INSERT objs as save(force_insert=True) would (defaults and auto_now filled, the objects marked
    written; no signals sent, ids of auto-incremented keys not read back), in one statement or a few past
    the database's parameter limit."""
    db = connections[router.db_for_write(model)]
    per_statement = max(1, (db.features.max_query_params or 2**16 - 1) // column_count(model))
    with db.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start:start + per_statement]
            cursor.execute(insert_sql(db, model, len(chunk)), row_params(model, chunk, db))
    mark_written(objs, db)
