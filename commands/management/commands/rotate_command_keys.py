from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from commands import services


class Command(BaseCommand):
    help = (
        "Start a command-key rotation: every active device (or the given ones) gets a `next` key, "
        "handed out in heartbeat answers now and signing after --lead-hours (at least 24, PROTOCOL.md). "
        "The promotion runs in beat (commands.tasks.promote_command_keys); --promote-now runs it here."
    )

    def add_arguments(self, parser):
        parser.add_argument("--lead-hours", type=float, default=24.0)
        parser.add_argument("--device", action="append", dest="devices", help="a device id (repeatable)")
        parser.add_argument("--promote-now", action="store_true", help="promote keys already due, then exit")

    def handle(self, *args, lead_hours, devices, promote_now, **options):
        if promote_now:
            n = services.promote_due_keys()
            self.stdout.write(f"promoted the next key of {n} device(s)")
            return
        if lead_hours < 24:
            raise CommandError("--lead-hours must be at least 24: a next key is handed out a day before it signs")
        n = services.start_key_rotation(actor="system:rotate_command_keys", lead=timedelta(hours=lead_hours), device_ids=devices)
        self.stdout.write(f"rotation started for {n} device(s); new keys sign after {lead_hours:g} h")
