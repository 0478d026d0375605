from django.core.management.base import BaseCommand

from devices import partitions


class Command(BaseCommand):
    help = "Heartbeat history partitions (PostgreSQL): create ahead, drop past retention, list."

    def add_arguments(self, parser):
        parser.add_argument("--ensure", action="store_true", help=f"Create today's and the next {partitions.DAYS_AHEAD} days' partitions.")
        parser.add_argument("--drop-expired", action="store_true", help="Drop partitions past history_retention_days.")
        parser.add_argument("--list", action="store_true", help="List partitions with their row counts.")
        parser.add_argument("--days-ahead", type=int, default=partitions.DAYS_AHEAD)

    def handle(self, *args, ensure, drop_expired, list, days_ahead, **options):
        if not (ensure or drop_expired or list):
            ensure = drop_expired = list = True
        if not partitions.is_partitioned():
            self.stdout.write("History is a plain table on this database (no partitions).")
            if drop_expired:
                partitions.drop_expired()
                self.stdout.write("Rows past retention deleted.")
            return
        if ensure:
            created = partitions.ensure_partitions(days_ahead=days_ahead)
            self.stdout.write(f"created: {', '.join(created) if created else 'none (all present)'}")
        if drop_expired:
            dropped = partitions.drop_expired()
            self.stdout.write(f"dropped: {', '.join(dropped) if dropped else 'none'}")
        if list:
            for part in partitions.list_partitions(with_counts=True):
                label = "DEFAULT" if part.is_default else f"{part.day:%Y-%m-%d}"
                self.stdout.write(f"{part.name}\t{label}\t{part.rows} rows")
