"""manage.py dead_letters [--list [--limit N]] [--purge]: the write-behind's dead letters
(mdm.deadletters): entries the heartbeat and result flushes could not write and set aside."""

import json

from django.core.management.base import BaseCommand

from mdm import deadletters, services


class Command(BaseCommand):
    help = "Show (--list, the default) or delete (--purge) the write-behind's dead letters."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--list", action="store_true", help="one JSON object a line, newest first (default)")
        group.add_argument("--purge", action="store_true", help="delete them all (audited)")
        parser.add_argument("--limit", type=int, default=deadletters.MAX_LETTERS, help="at most this many (--list)")

    def handle(self, *args, **options):
        if options["purge"]:
            purged = services.purge_dead_letters(actor="manage.py dead_letters")
            self.stdout.write(f"purged {purged} dead letters")
            return
        count = deadletters.count()
        for letter in deadletters.entries(limit=options["limit"]):
            self.stdout.write(json.dumps(letter, ensure_ascii=True))
        self.stderr.write(f"{count} dead letters")
