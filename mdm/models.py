import time
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class AuditEvent(models.Model):
    """Who did what to which object, written by services in the same transaction as the change.
    Data must already have secrets masked (see mdm.audit.mask)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "user:<name>", "device:<uuid>", "system" or "key:<name>": kept when the actor row is gone.
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["target_type", "target_id", "-at"]),
            # The audit log's action filter, exact ("policy.create") or by prefix ("policy."),
            # newest first. The pattern operator class lets PostgreSQL answer `LIKE 'policy.%'`
            # from the index whatever the database's collation (= is in the class too).
            models.Index(fields=["action", "-at"], name="mdm_audit_action_at", opclasses=["varchar_pattern_ops", ""]),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_type}:{self.target_id}"

    def data_items(self) -> list[tuple[str, str, bool]]:
        """The data as (key, text, is_block) for people, keys in order, in words rather than
        JSON or Python: a change `{"from": a, "to": b}` reads "a → b", true/false "yes"/"no",
        null "—", a list "a, b"; a nested object is lines of "key: value", indented under its
        key (is_block)."""
        data = self.data if isinstance(self.data, dict) else {"": self.data}
        items = []
        for key in sorted(data, key=str):
            lines = readable_lines(data[key])
            items.append((str(key), "\n".join(lines), len(lines) > 1))
        return items


def _scalar(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value == "":
        return "(empty)"
    return str(value)


def _is_change(value) -> bool:
    return isinstance(value, dict) and value.keys() == {"from", "to"}


def _flat(value) -> bool:
    """Said on one line: a scalar, a list of scalars, or a change between two such."""
    if isinstance(value, list):
        return all(not isinstance(v, (dict, list)) for v in value)
    if _is_change(value):
        return _flat(value["from"]) and _flat(value["to"])
    return not isinstance(value, dict)


def _inline(value) -> str:
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value) or "none"
    if _is_change(value):
        return f"{_inline(value['from'])} → {_inline(value['to'])}"
    return _scalar(value)


def readable_lines(value, depth: int = 0) -> list[str]:
    """A JSON value as lines a person reads: "key: value", nested values indented under their
    key, list items after "- "."""
    pad = "  " * depth
    if _flat(value):
        return [pad + _inline(value)]
    if isinstance(value, dict):
        lines = []
        for key in sorted(value, key=str):
            item = value[key]
            if _flat(item):
                lines.append(f"{pad}{key}: {_inline(item)}")
            else:
                lines += [f"{pad}{key}:", *readable_lines(item, depth + 1)]
        return lines or [pad + "none"]
    lines = []
    for item in value:
        sub = readable_lines(item, depth + 1)
        lines += [f"{pad}- {sub[0].strip()}", *sub[1:]]
    return lines


class FleetSettings(models.Model):
    """Fleet-wide settings: one row (pk=1), edited from the console's settings drawer."""

    class Reenroll(models.TextChoices):
        # PROTOCOL.md v1.1: `approval` is the default, `allowed` an opt-in whose cost the settings
        # form spells out (mdm.forms.REENROLL_HELP).
        APPROVAL = "approval", "Needs the device's token or an admin's approval"
        ALLOWED = "allowed", "Allowed with any enrollment key"

    heartbeat_interval_s = models.PositiveIntegerField(
        "heartbeat interval (s)", default=30, help_text="How often devices report (seconds, 10-3600)."
    )
    offline_after_s = models.PositiveIntegerField(
        "offline after (s)", null=True, blank=True, help_text="Offline after this long without a heartbeat; empty = 3 x interval."
    )
    history_retention_days = models.PositiveIntegerField("history retention (days)", default=30, help_text="Days of telemetry history kept.")
    default_command_expiry_s = models.PositiveIntegerField(
        "default command expiry (s)", default=3600, help_text="Commands expire after this long unless the issuer says otherwise."
    )
    reenroll_policy = models.CharField(
        "re-enrollment of a known device", max_length=10, choices=Reenroll.choices, default=Reenroll.APPROVAL
    )
    audit_retention_days = models.PositiveIntegerField(
        "audit log retention (days)",
        default=365,
        validators=[MinValueValidator(30), MaxValueValidator(3650)],
        help_text="Audit events older than this are deleted (30-3650 days).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "fleet settings"
        verbose_name_plural = "fleet settings"

    def __str__(self):
        return "Fleet settings"

    @property
    def offline_threshold_s(self) -> int:
        return self.offline_after_s or 3 * self.heartbeat_interval_s

    # The heartbeat path reads these on every request; a per-process copy kept for a few
    # seconds saves a query each time. Changes reach every process within _TTL.
    _cached: "FleetSettings | None" = None
    _cached_at: float = 0.0
    _TTL = 5.0

    @classmethod
    def current(cls) -> "FleetSettings":
        now = time.monotonic()
        if cls._cached is None or now - cls._cached_at > cls._TTL:
            cls._cached, _ = cls.objects.get_or_create(pk=1)
            cls._cached_at = now
        return cls._cached

    @classmethod
    def forget_cached(cls) -> None:
        cls._cached = None
