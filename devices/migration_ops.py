"""Migration operations for the partitioned history table (imported by devices/migrations)."""

from django.db import migrations


class CreatePartitionedModel(migrations.CreateModel):
    """CreateModel whose table is, on PostgreSQL, range-partitioned by `partition_key` with a
    DEFAULT partition (a safety net: a row whose day has no partition yet lands there instead of
    failing a heartbeat; maintenance creates partitions days ahead so it normally stays empty).
    Elsewhere (the embedded SQLite default) it is a plain table."""

    def __init__(self, *args, partition_key: str = "at", **kwargs):
        self.partition_key = partition_key
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        kwargs["partition_key"] = self.partition_key
        return name, args, kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.name)
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        table = model._meta.db_table
        sql, params = schema_editor.table_sql(model)
        key = schema_editor.quote_name(self.partition_key)
        schema_editor.execute(f"{sql} PARTITION BY RANGE ({key})", params or None)
        schema_editor.execute(
            f"CREATE TABLE {schema_editor.quote_name(table + '_default')} "
            f"PARTITION OF {schema_editor.quote_name(table)} DEFAULT"
        )
