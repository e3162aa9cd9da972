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


@functools.lru_cache(maxsize=256)
def _statement(db, model, rows: int) -> str:
    qn = db.ops.quote_name
    fields = _columns(model)
    row = f"({', '.join(['%s'] * len(fields))})"
    return (f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(field.column) for field in fields)}) "
            f"VALUES {', '.join([row] * rows)}")


def insert_rows(model, objs: list) -> None:
    """INSERT objs as save(force_insert=True) would (defaults and auto_now filled, the objects marked
    written; no signals sent, ids of auto-incremented keys not read back), in one statement or a few past
    the database's parameter limit."""
    db = connections[router.db_for_write(model)]
    fields = _columns(model)
    per_statement = max(1, (db.features.max_query_params or 2**16 - 1) // len(fields))
    with db.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start:start + per_statement]
            params = [_value(field, obj, db) for obj in chunk for field in fields]
            cursor.execute(_statement(db, model, len(chunk)), params)
    for obj in objs:
        obj._state.adding, obj._state.db = False, db.alias  # as save() leaves a written row
