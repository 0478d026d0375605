"""Idempotency fingerprints were a plain SHA-256 of the request body, which may hold a Wi-Fi
password (an offline guess could be checked against it). They are keyed HMACs now
(services.request_fingerprint); the plain ones are blanked rather than kept: a retry of such a key
within its 24 h window no longer matches and answers 409 conflict, never a second command."""

from django.db import migrations


def forget(apps, schema_editor):
    apps.get_model("commands", "Command").objects.exclude(request_hash="").update(request_hash="")


class Migration(migrations.Migration):
    dependencies = [("commands", "0003_delivery_fk_indexes_covered")]

    operations = [migrations.RunPython(forget, migrations.RunPython.noop)]
