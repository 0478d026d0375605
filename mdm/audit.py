"""The one helper services use to write audit records."""

from collections.abc import Mapping
from typing import Any

from mdm.clientip import client_ip  # noqa: F401  (callers record the client IP from here)
from mdm.models import AuditEvent

MASK = "***"
SECRET_KEYS = frozenset({"password", "secret", "token", "key", "device_token", "psk", "eap_password"})


def mask(data: Any) -> Any:
    """A copy of data with the values of secret-looking keys replaced by ***."""
    if isinstance(data, Mapping):
        return {k: MASK if k.lower() in SECRET_KEYS and v not in (None, "") else mask(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [mask(v) for v in data]
    return data


def actor_label(actor) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return f"user:{actor.get_username()}"


def record(*, actor, action: str, target=None, data: Mapping | None = None, ip: str | None = None) -> AuditEvent:
    """Write an audit event. `actor` is a user, a label string ("device:<id>") or None (system);
    `target` a model instance (its public id is used) or a (type, id) pair."""
    target_type, target_id = "", ""
    if isinstance(target, tuple):
        target_type, target_id = target
    elif target is not None:
        target_type = target._meta.model_name
        target_id = str(getattr(target, "public_id", None) or target.pk)
    user = actor if actor is not None and not isinstance(actor, str) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_label=actor_label(actor),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        data=mask(dict(data or {})),
        ip=ip,
    )



def record_many(*, actor, action: str, targets, data_for, ip: str | None = None) -> int:
    """record() for many targets of one bulk change, in one INSERT (a bulk move of 2,000 devices
    is one statement, not 2,000). `data_for(target)` gives each record's data."""
    user = actor if actor is not None and not isinstance(actor, str) else None
    label = actor_label(actor)
    rows = [
        AuditEvent(actor=user, actor_label=label, action=action, target_type=t._meta.model_name,
                   target_id=str(getattr(t, "public_id", None) or t.pk), data=mask(dict(data_for(t) or {})), ip=ip)
        for t in targets
    ]
    AuditEvent.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
