from django.core.management.base import BaseCommand, CommandError

from devices.models import DeviceGroup
from enrollment.services import keys as services


class Command(BaseCommand):
    help = "Create an enrollment key. The key is printed alone on the last line (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--max-uses", type=int, default=None)
        parser.add_argument("--group", default=None, help="Pin enrolled devices to this group (created if missing).")

    def handle(self, *args, name, expires_in_days, max_uses, group, **options):
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        if max_uses is not None and max_uses < 1:
            raise CommandError("--max-uses must be at least 1")
        group_obj = None
        if group:
            group_obj = DeviceGroup.objects.filter(name=group).first()
            if group_obj is None:
                from devices.services import create_group

                group_obj = create_group(actor="system:manage.py", name=group)
        new = services.create_enrollment_key(
            actor="system:manage.py",
            name=name,
            expires_at=services.expires_in_days(expires_in_days),
            max_uses=max_uses,
            group=group_obj,
        )
        key = new.key
        self.stderr.write(
            f"Created enrollment key {key.name!r} ({key.prefix}…)"
            f"{f', expires {key.expires_at:%Y-%m-%d %H:%M} UTC' if key.expires_at else ''}"
            f"{f', {key.max_uses} uses' if key.max_uses else ''}"
            f"{f', group {group_obj.name}' if group_obj else ''}. It is shown once:"
        )
        self.stdout.write(new.raw)
