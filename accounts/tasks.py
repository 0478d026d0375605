from celery import shared_task
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.template.loader import render_to_string
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

RESET_SUBJECT = "accounts/password_reset_subject.txt"
RESET_BODY = "accounts/password_reset_email.txt"


@shared_task
def flush_expired_tokens() -> None:
    """Outstanding and blacklisted refresh tokens past their expiry (simplejwt's token_blacklist
    keeps a row per sign-in and per refresh)."""
    call_command("flushexpiredtokens", verbosity=0)


# smtplib's errors are OSErrors, as are a refused connection and a timeout: all worth another try.
@shared_task(autoretry_for=(OSError,), retry_backoff=30, retry_backoff_max=900, retry_jitter=True, max_retries=6)
def send_password_reset_email(*, user_id: str, email: str) -> bool:
    """The reset link to an account that still matches the address asked for (active, with a
    usable password: Django's rule). The token is made here, at sending time: it expires
    PASSWORD_RESET_TIMEOUT after the mail leaves, and it is never in the broker."""
    user = next((u for u in PasswordResetForm().get_users(email) if str(u.pk) == user_id), None)
    if user is None:
        return False
    context = {
        "user": user,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
        "base_url": settings.PUBLIC_BASE_URL,
    }
    subject = "".join(render_to_string(RESET_SUBJECT, context).splitlines())
    EmailMessage(subject, render_to_string(RESET_BODY, context), to=[user.email]).send()
    return True
