"""Role checks, in one place: DRF permission classes for the API and a decorator for the console."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from rest_framework.permissions import SAFE_METHODS, BasePermission


def _has(user, role: str) -> bool:
    return bool(user and user.is_authenticated and user.has_role(role))


class IsViewer(BasePermission):
    """Any signed-in user may read; writes need operator (the API default)."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return _has(request.user, "viewer")
        return _has(request.user, "operator")


class IsOperator(BasePermission):
    def has_permission(self, request, view):
        return _has(request.user, "operator")


class IsAdmin(BasePermission):
    def has_permission(self, request, view):
        return _has(request.user, "admin")


def _refused(request, role: str) -> HttpResponse:
    """A 403 for a signed-in user below `role`: a plain message to htmx, which shows it in place;
    a page (templates/403.html, in the console's frame, with a way back) to a browser."""
    message = f"This needs the {role} role."
    if request.headers.get("HX-Request"):
        return HttpResponse(message, status=403)
    raise PermissionDenied(message)


def role_required(role: str):
    """Console views: anonymous users go to the login page; a signed-in user below `role` gets a
    403 (see _refused)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_role(role):
                return _refused(request, role)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def write_requires(role: str):
    """Console views that read for everyone signed in and write (POST etc.) only for `role`."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if request.method not in SAFE_METHODS and not request.user.has_role(role):
                return _refused(request, role)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class HasScope(BasePermission):
    """An API key (accounts.apikeys) that carries `scope`. Compose with a role check:
    `permission_classes = [IsViewer | HasScope.of("apk:read")]`."""

    scope = ""

    @classmethod
    def of(cls, scope: str):
        return type(f"HasScope_{scope.replace(':', '_')}", (cls,), {"scope": scope})

    def has_permission(self, request, view):
        from accounts.models import ApiKey

        key = getattr(request, "auth", None)
        return isinstance(key, ApiKey) and key.has_scope(self.scope)
