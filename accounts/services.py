from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from mdm import audit, realtime

User = get_user_model()


class AccountStateError(ValueError):
    """The change does not apply to the account as it is (approving an approved account...)."""


@transaction.atomic
def register_user(*, username: str, email: str, password: str, ip: str | None = None) -> User:
    """Self-service registration (REGISTRATION_OPEN). The account is created inactive and
    unapproved: it cannot sign in, hold a session or get an API token until an admin approves it
    and picks its role (approve_user)."""
    user = User.objects.create_user(
        username=username, email=email, password=password, is_active=False, approved_at=None
    )
    audit.record(actor=user, action="user.register", target=user, ip=ip)
    return user


@transaction.atomic
def approve_user(*, actor, user: User, role: str | None = None, ip: str | None = None) -> User:
    """Let a registered account in, with the role the admin picked (REGISTRATION_DEFAULT_ROLE
    when none)."""
    role = role or settings.REGISTRATION_DEFAULT_ROLE
    if role not in User.Role.values:
        raise ValueError(f"unknown role {role}")
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_pending:
        raise AccountStateError("This account is not waiting for approval.")
    user.is_active, user.approved_at, user.role = True, timezone.now(), role
    user.save(update_fields=["is_active", "approved_at", "role"])
    audit.record(actor=actor, action="user.approve", target=user, data={"role": role}, ip=ip)
    return user


@transaction.atomic
def reject_registration(*, actor, user: User, ip: str | None = None) -> None:
    """Delete an account that is still waiting for approval."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_pending:
        raise AccountStateError("Only an account waiting for approval can be rejected.")
    audit.record(actor=actor, action="user.reject", target=user, data={"username": user.username}, ip=ip)
    user.delete()


@transaction.atomic
def update_profile(*, user: User, first_name: str, last_name: str, email: str, ip: str | None = None) -> User:
    values = {"first_name": first_name, "last_name": last_name, "email": email}
    changed = [name for name, value in values.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, values[name])
    if changed:
        user.save(update_fields=changed)
        audit.record(actor=user, action="user.update_profile", target=user, data={"fields": changed}, ip=ip)
    return user


@transaction.atomic
def set_role(*, actor, user: User, role: str, ip: str | None = None) -> User:
    if role not in User.Role.values:
        raise ValueError(f"unknown role {role}")
    previous = user.role
    if previous != role:
        user.role = role
        user.save(update_fields=["role"])
        audit.record(actor=actor, action="user.set_role", target=user, data={"from": previous, "to": role}, ip=ip)
    return user


@transaction.atomic
def set_active(*, actor, user: User, active: bool, ip: str | None = None) -> User:
    """Deactivating ends everything the account holds at once: its sessions and API tokens (the
    credential version is part of their stamp, so reactivating does not bring them back) and
    its open console sockets."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_pending:
        raise AccountStateError("This account is waiting for approval: approve or reject it.")
    if not active and actor is not None and getattr(actor, "pk", None) == user.pk:
        raise AccountStateError("You cannot deactivate your own account.")
    if user.is_active != active:
        user.is_active = active
        fields = ["is_active"]
        if not active:
            user.credential_version += 1
            fields.append("credential_version")
        user.save(update_fields=fields)
        audit.record(actor=actor, action="user.activate" if active else "user.deactivate", target=user, ip=ip)
        if not active:
            realtime.close_sockets(realtime.user_group(user.pk))
    return user


def record_password_change(*, user: User, how: str, actor=None, ip: str | None = None) -> None:
    """After a password was set (Django's forms save it; its new hash changes the credential
    stamp, which ends the user's other sessions and every API token): the audit row, and the
    user's open console sockets closed."""
    with transaction.atomic():
        audit.record(actor=actor or user, action=f"user.password_{how}", target=user, ip=ip)
        realtime.close_sockets(realtime.user_group(user.pk))


def on_logged_out(sender, request, user, **kwargs):
    """user_logged_out receiver (accounts.apps): the signed-out session's console sockets close.
    Other sessions of the same user stay signed in, and so do their sockets."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        realtime.close_sockets(realtime.session_group(session_key))


# --- API keys (accounts.apikeys) ------------------------------------------------------------
class NewApiKey:
    def __init__(self, key, raw: str):
        self.key = key
        self.raw = raw  # shown once, never stored


@transaction.atomic
def create_api_key(*, actor, name: str, scopes, expires_at=None, ip: str | None = None) -> NewApiKey:
    from accounts.apikeys import hash_key, new_key
    from accounts.models import ApiKey

    allowed = set(ApiKey.Scope.values)
    scopes = sorted(set(scopes))
    if not scopes or not set(scopes) <= allowed:
        raise ValueError(f"scopes: one or more of {', '.join(sorted(allowed))}")
    raw, prefix = new_key()
    key = ApiKey.objects.create(name=name.strip()[:100], prefix=prefix, key_hash=hash_key(raw), scopes=scopes,
                                created_by=actor if getattr(actor, "pk", None) else None, expires_at=expires_at)
    audit.record(actor=actor, action="api_key.create", target=("apikey", str(key.id)),
                 data={"name": key.name, "prefix": prefix, "scopes": scopes,
                       "expires_at": expires_at.isoformat() if expires_at else None}, ip=ip)
    return NewApiKey(key, raw)


@transaction.atomic
def revoke_api_key(*, actor, key, ip: str | None = None):
    from accounts.models import ApiKey

    if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit.record(actor=actor, action="api_key.revoke", target=("apikey", str(key.id)), data={"name": key.name}, ip=ip)
    key.refresh_from_db()
    return key
