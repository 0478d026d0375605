"""The audit log as a tool (issue 18): its retention becomes a fleet setting (365 days, at least
30), and the action filter gets an index on (action, at DESC) that also serves prefixes ("policy.")
in any collation; it replaces the single-column index on action, whose work it does."""

import django.core.validators
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mdm', '0002_reenroll_policy_approval'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='fleetsettings',
            name='audit_retention_days',
            field=models.PositiveIntegerField(default=365, help_text='Audit events older than this are deleted (30-3650 days).', validators=[django.core.validators.MinValueValidator(30), django.core.validators.MaxValueValidator(3650)], verbose_name='audit log retention (days)'),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(max_length=100),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['action', '-at'], name='mdm_audit_action_at', opclasses=['varchar_pattern_ops', '']),
        ),
    ]
