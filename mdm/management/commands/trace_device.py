"""Log every request of one device for a while (mdm.requestlog): a device's 2xx requests are
otherwise counted in the metrics, not logged one by one."""

from django.core.management.base import BaseCommand, CommandError

from mdm import requestlog


class Command(BaseCommand):
    help = "Log every request of a device for N minutes (default 30), or --stop."

    def add_arguments(self, parser):
        parser.add_argument("device_id")
        parser.add_argument("--minutes", type=int, default=30)
        parser.add_argument("--stop", action="store_true")

    def handle(self, device_id, minutes, stop, **options):
        if stop:
            requestlog.untrace(device_id)
            self.stdout.write(f"Stopped tracing {device_id}.")
            return
        if not 1 <= minutes <= 1440:
            raise CommandError("--minutes: from 1 to 1440.")
        try:
            requestlog.trace(device_id, minutes * 60)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Tracing {device_id} for {minutes} min: every request of it is logged (within 5 s on every web process).")
