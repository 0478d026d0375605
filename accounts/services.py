from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from mdm import audit

User = get_user_model()


@transaction.atomic
def register_user(*, username: str, email: str, password: str, ip: str | None = None) -> User:
    """Self-service registration. New accounts start with REGISTRATION_DEFAULT_ROLE (viewer unless
    configured) until an admin promotes them."""
    user = User.objects.create_user(
        username=username, email=email, password=password, role=settings.REGISTRATION_DEFAULT_ROLE
    )
    audit.record(actor=user, action="user.register", target=user, data={"role": user.role}, ip=ip)
    return user


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
    if user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit.record(actor=actor, action="user.activate" if active else "user.deactivate", target=user, ip=ip)
    return user


def record_password_change(*, user: User, how: str, ip: str | None = None) -> None:
    """Django's views set the password; this writes the audit row for it."""
    audit.record(actor=user, action=f"user.password_{how}", target=user, ip=ip)
