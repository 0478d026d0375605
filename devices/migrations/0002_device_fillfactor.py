"""Room in each page of the device table for HOT updates (PostgreSQL).

Every command claims one `next_seq` per target device (commands.services.issuing._claim_seqs), an UPDATE
of 2,000 rows for a fan-out. `next_seq` is in no index, so PostgreSQL can update a row in place
(heap-only tuple) and skip the table's eleven indexes, but only when the row's page has free
space: with the default fillfactor of 100 a freshly enrolled fleet's pages are full and every
claim wrote eleven index entries. Half-full pages leave room for every row of a page to be
rewritten once within one claim (at 70, 130 of 300 claims were HOT; at 50, all): claiming 2,000
seqs took 43 ms instead of 142 ms in-process (docs/performance.md). Rows written before this migration keep their pages
until the table is rewritten (`VACUUM FULL devices_device`, during a quiet hour).
"""

from django.db import migrations

FILLFACTOR = 50


def set_fillfactor(apps, schema_editor, value=FILLFACTOR):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE devices_device SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE devices_device RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("devices", "0001_initial")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False)]
