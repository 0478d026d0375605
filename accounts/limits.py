"""Limits on the forms anyone can post: sign-in (console, /admin/login/, POST /api/v1/auth/token),
registration and password reset.

- Lockout is django-axes (settings: AXES_*): after LOGIN_FAILURE_LIMIT failures for one username
  from one client IP, that pair is refused for LOGIN_LOCKOUT_MINUTES, right password or not.
- Failed sign-ins per client IP across all usernames (LOGIN_IP_FAILURE_RATE) and the two forms
  are counted by django-ratelimit in the cache; the client IP is mdm.clientip's.

The answer to both is the same: 429 with Retry-After, JSON `{"detail", "code": "rate_limited"}`
under /api/, the form again with the message elsewhere."""

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

LOGIN_FAILURES = "login-failures"


def _wait_words(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def lockout_seconds(request) -> int:
    """How long this client waits: the per-IP window's rest when that limit refused it, else
    django-axes's cool-off."""
    wait = getattr(request, "login_retry_after", None)
    if wait:
        return int(wait)
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message(seconds: int) -> str:
    return f"Too many failed sign-in attempts. Try again in {_wait_words(seconds)}."


def rate_limited_message(seconds: int) -> str:
    return f"Too many requests from your address. Try again in {_wait_words(seconds)}."


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: what a locked-out sign-in gets."""
    seconds = lockout_seconds(request)
    message = lockout_message(seconds)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message, "code": "rate_limited"}, status=429)
    else:
        context = {"form": AuthenticationForm(request), "limit_message": message}
        response = render(request, "accounts/login.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response


def over_rate(request, *, group: str, rate: str, key="ip") -> int | None:
    """Count this request against `rate`; the seconds to wait when it is over, else None."""
    usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    if usage is not None and usage["should_limit"]:
        return max(1, int(usage["time_left"]))
    return None


def _login_failures(request, *, increment: bool):
    return get_usage(request, group=LOGIN_FAILURES, key="ip", rate=settings.LOGIN_IP_FAILURE_RATE, increment=increment)


class ClientIPFailureBackend:
    """Second authentication backend (after django-axes's): refuses every sign-in from a client IP
    that failed LOGIN_IP_FAILURE_RATE times in the window, whatever the username. It authenticates
    no one itself. Marking the request as axes does makes every sign-in path answer it the same
    way (AxesMiddleware for the console and /admin/login/, accounts.api.views for the API)."""

    def authenticate(self, request, **credentials):
        if request is None:
            return None
        usage = _login_failures(request, increment=False)
        if usage is not None and usage["count"] >= usage["limit"]:
            request.login_retry_after = max(1, int(usage["time_left"]))
            request.axes_locked_out = True
            raise PermissionDenied
        return None


def count_login_failure(sender, credentials, request=None, **kwargs):
    """user_login_failed receiver (accounts.apps): Django's one event that every sign-in path
    sends on failure; django-axes listens to it the same way."""
    if request is not None:
        _login_failures(request, increment=True)
