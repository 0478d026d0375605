""""Retry failed": a command records the one it sends again (Command.retry_of)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('commands', '0006_readonly_shell_presets'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='command',
            name='retry_of',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='retries', to='commands.command'),
        ),
        migrations.AddIndex(
            model_name='command',
            index=models.Index(condition=models.Q(('retry_of__isnull', False)), fields=['retry_of'], name='command_retry_of_idx'),
        ),
    ]
