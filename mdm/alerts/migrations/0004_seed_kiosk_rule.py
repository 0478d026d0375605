from django.db import migrations


def seed(apps, schema_editor):
    from mdm.alerts.seeds import seed as seed_rules

    seed_rules(apps.get_model("alerts", "AlertRule"))  # the kinds added since 0002 (kiosk_not_in_front)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0003_remediation_stop_and_action")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
