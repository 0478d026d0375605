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


def copy_rows(model: type[Model], fields: list[str], rows) -> int:
    """Insert `rows` (tuples in `fields` order; a foreign key by its attname, `rule_id`) in one
    COPY on PostgreSQL, several times faster than bulk_create's INSERT for thousands of rows: no
    SQL to compile, no model instances, no RETURNING. The other columns get their field's default
    (the database has none: Django keeps defaults in Python), auto_now fields the time; an auto id
    its sequence. bulk_create
    on other databases. Returns the number of rows."""
    rows = list(rows)
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**dict(zip(fields, row))) for row in rows], batch_size=2000)
        return len(rows)
    from django.db import connections
    from django.db.models import JSONField

    db = connections["default"]  # not the proxy: its attribute lookups cost per value
    meta = model._meta
    given = [meta.get_field(name) for name in fields]
    # psycopg adapts UUIDs, text, numbers and datetimes itself; JSON goes through the field.
    preps = [f.get_db_prep_save if isinstance(f, JSONField) else None for f in given]
    names = {f.attname for f in given}
    rest = [f for f in meta.concrete_fields if f.attname not in names and not (f.primary_key and not f.has_default())]
    columns = given + rest
    from django.utils import timezone

    now = timezone.now()
    defaults = [now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
                else f.get_db_prep_save(f.get_default(), db) for f in rest]
    quoted = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table(model)} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([v if prep is None else prep(v, db) for prep, v in zip(preps, row)] + defaults)
    return len(rows)
