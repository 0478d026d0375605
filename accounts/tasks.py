from celery import shared_task
from django.core.management import call_command


@shared_task
def flush_expired_tokens() -> None:
    """Outstanding and blacklisted refresh tokens past their expiry (simplejwt's token_blacklist
    keeps a row per sign-in and per refresh)."""
    call_command("flushexpiredtokens", verbosity=0)
