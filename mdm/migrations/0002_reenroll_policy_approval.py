"""PROTOCOL.md v1.1: re-enrollment of a known device needs its token or an admin's approval by
default; `allowed` (anyone with a serial and an enrollment key takes the device over) is opt-in.

Existing installations: `allowed` was the default, so a row saying `allowed` usually means nobody
chose it. It becomes `approval`, with an audit record saying why, unless the audit log shows an
admin set it to `allowed` on purpose (their latest change of the setting went to `allowed`): that
choice is kept. An installation whose audit records were pruned is switched (the safe side).
"""

from django.db import migrations, models

REASON = "protocol v1.1: re-enrollment needs the device's token or an admin's approval unless chosen otherwise"


def approval_unless_chosen(apps, schema_editor):
    FleetSettings = apps.get_model("mdm", "FleetSettings")
    AuditEvent = apps.get_model("mdm", "AuditEvent")
    for fleet in FleetSettings.objects.filter(reenroll_policy="allowed"):
        latest = (
            AuditEvent.objects.filter(action="fleet_settings.update", data__has_key="reenroll_policy")
            .order_by("-at")
            .first()
        )
        if latest is not None and (latest.data.get("reenroll_policy") or {}).get("to") == "allowed":
            continue
        FleetSettings.objects.filter(pk=fleet.pk).update(reenroll_policy="approval")
        AuditEvent.objects.create(
            actor=None,
            actor_label="system",
            action="fleet_settings.update",
            target_type="fleetsettings",
            target_id=str(fleet.pk),
            data={"reenroll_policy": {"from": "allowed", "to": "approval"}, "reason": REASON},
        )


class Migration(migrations.Migration):

    dependencies = [
        ("mdm", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="fleetsettings",
            name="reenroll_policy",
            field=models.CharField(
                choices=[
                    ("approval", "Needs the device's token or an admin's approval"),
                    ("allowed", "Allowed with any enrollment key"),
                ],
                default="approval",
                max_length=10,
                verbose_name="re-enrollment of a known device",
            ),
        ),
        # Forward only: going back does not reopen the takeover.
        migrations.RunPython(approval_unless_chosen, migrations.RunPython.noop),
    ]
