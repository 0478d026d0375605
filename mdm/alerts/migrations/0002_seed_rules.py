from django.db import migrations


def seed(apps, schema_editor):
    from mdm.alerts.seeds import seed as seed_rules

    seed_rules(apps.get_model("alerts", "AlertRule"))


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
