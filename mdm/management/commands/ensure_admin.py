import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from mdm.secretfile import write_private


class Command(BaseCommand):
    help = "Create a first admin if there is no user yet, and print how to sign in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin"))
        parser.add_argument("--email", default=os.environ.get("DJANGO_SUPERUSER_EMAIL", "admin@localhost"))

    def handle(self, *args, username, email, **options):
        User = get_user_model()
        url = settings.PUBLIC_BASE_URL + "/"
        note = settings.VAR_DIR / "initial-admin.txt"
        if User.objects.exists():
            where = f"; the first admin's password was saved in {note}" if note.exists() else ""
            self.stdout.write(f"Console: {url}  (sign in with an existing account{where}; "
                              f"`manage.py changepassword <username>` sets a new one)")
            return
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=email, password=password, role=User.Role.ADMIN)
        settings.VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0o600 with its content, never world-readable for a moment (mdm.secretfile).
        write_private(note, f"username: {username}\npassword: {password}\n")
        self.stdout.write(self.style.SUCCESS("Created the first admin."))
        self.stdout.write(f"Console: {url}\n  username: {username}\n  password: {password}\n  (also saved in {note}; change it under Profile)")
