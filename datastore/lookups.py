"""SQL for record JSON that the ORM lacks on some backend: list membership, datetime order, key-wise update."""
import json

from django.db.models import Func, JSONField, Lookup, TextField
from django.db.models.fields.json import DataContains, KeyTransform


class JSONListHas(Lookup):
    """The JSON list under a key (the lhs, a KeyTransform) has the rhs value as one of its items."""

    lookup_name = "has_item"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        return compiler.compile(DataContains(self.lhs, [self.rhs]))

    def as_sqlite(self, compiler, connection):
        # Django has no JSON containment on SQLite; json_each over the key's path supplies it.
        if not isinstance(self.lhs, KeyTransform):
            raise TypeError("JSONListHas needs a key of a JSON field on its left")
        column, params, keys = self.lhs.preprocess_lhs(compiler, connection)
        sql = f"EXISTS (SELECT 1 FROM json_each({column}, %s) AS list_item WHERE list_item.value = %s)"
        return sql, (*params, connection.ops.compile_json_path(keys), self.rhs)


class SortableDatetime(Func):
    """Canonical datetime text padded to microseconds, so that it orders as text ("…:00Z" sorts after "…:00.5Z")."""

    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        padded = f"(CASE WHEN LENGTH({sql}) = 20 THEN SUBSTR({sql}, 1, 19) || '.000000Z' ELSE {sql} END)"
        return padded, (*params, *params, *params)


def sortable_datetime(value: str) -> str:
    """The Python side of SortableDatetime, for a canonical datetime value."""
    return value if len(value) != 20 else f"{value[:19]}.000000Z"


class JSONKeysUpdate(Func):
    """A JSON object column with some top-level keys set to new values and others removed."""

    output_field = JSONField()

    def __init__(self, expression, *, values: dict, remove: list[str]):
        super().__init__(expression)
        self.values, self.remove = values, list(remove)

    def as_sql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.get_source_expressions()[0])
        return f"(({column} || %s::jsonb) - %s::text[])", (*params, json.dumps(self.values), self.remove)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        params = list(params)
        if self.values:
            sql = f"json_set({sql}, {', '.join(['%s, json(%s)'] * len(self.values))})"
            for key, value in self.values.items():
                params += [connection.ops.compile_json_path([key]), json.dumps(value)]
        if self.remove:
            sql = f"json_remove({sql}, {', '.join(['%s'] * len(self.remove))})"
            params += [connection.ops.compile_json_path([key]) for key in self.remove]
        return sql, tuple(params)
