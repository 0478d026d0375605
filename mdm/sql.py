"""Raw SQL for the few hot paths where compiling a queryset costs more than running it.

The heartbeat of a device with work runs three small indexed queries; built through the ORM
each costs ~0.5 ms of Python to compile, several times what PostgreSQL spends on it (see
docs/performance.md). Those paths write their SQL once and read rows through `Reader`, which
applies the same converters the ORM's compiler does (UUIDs, JSON, datetimes on SQLite), so a
row reads the same on PostgreSQL and on the embedded SQLite. Values go in through each field's
`get_db_prep_value`, as in `param`.
"""

from django.db import connection
from django.db.models import Field, Model


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def param(model: type[Model], name: str, value):
    """`value` as the database takes it for `model.name` (a UUID on SQLite, a datetime)."""
    return model._meta.get_field(name).get_db_prep_value(value, connection)


def placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


class Reader:
    """Rows of a raw SELECT as dicts, each column converted as the ORM would convert `field`.
    `columns` pairs a result name with the model field the column holds, in SELECT order."""

    def __init__(self, *columns: tuple[str, type[Model], str]):
        self.names = [name for name, _, _ in columns]
        self.fields: list[Field] = [model._meta.get_field(field) for _, model, field in columns]
        self._converters: dict[str, list] = {}

    def converters(self) -> list:
        vendor = connection.vendor
        found = self._converters.get(vendor)
        if found is None:
            found = []
            for field in self.fields:
                col = field.get_col(field.model._meta.db_table)
                found.append((connection.ops.get_db_converters(col) + col.get_db_converters(connection), col))
            self._converters[vendor] = found
        return found

    def rows(self, sql: str, params) -> list[dict]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        if not fetched:
            return []
        converters = self.converters()
        out = []
        for row in fetched:
            values = {}
            for name, value, (funcs, col) in zip(self.names, row, converters):
                for func in funcs:
                    value = func(value, col, connection)
                values[name] = value
            out.append(values)
        return out
