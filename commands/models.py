import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from commands import crypto
from mdm.audit import MASK


class CommandType(models.TextChoices):
    PING = "ping", "Ping"
    LAUNCH_APP = "launch_app", "Launch app"
    REBOOT = "reboot", "Reboot"
    LOCK = "lock", "Lock"
    SHELL = "shell", "Shell (allowlisted argv)"
    INSTALL_APK = "install_apk", "Install APK"
    UNINSTALL_APP = "uninstall_app", "Uninstall app"
    CLEAR_APP_DATA = "clear_app_data", "Clear app data"
    WIFI_CONFIGURE = "wifi_configure", "Configure Wi-Fi"


# PROTOCOL.md "Types": the params that are secret. A command carrying any of them is secret:
# encrypted at rest, masked everywhere, never sent over FCM.
SECRET_PARAMS: dict[str, frozenset[str]] = {CommandType.WIFI_CONFIGURE: frozenset({"password"})}
SECRET_TYPES = frozenset(SECRET_PARAMS)


class DeliveryState(models.TextChoices):
    QUEUED = "queued"
    SENT = "sent"
    RECEIVED = "received"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


S = DeliveryState
FINAL_STATES = frozenset({S.SUCCEEDED, S.FAILED, S.REJECTED, S.EXPIRED, S.CANCELLED})
PENDING_STATES = (S.QUEUED, S.SENT)
NON_FINAL_STATES = (S.QUEUED, S.SENT, S.RECEIVED, S.RUNNING)
DEVICE_STATUSES = (S.RECEIVED, S.RUNNING, S.SUCCEEDED, S.FAILED, S.REJECTED)
REJECT_REASONS = ("wrong_device", "expired", "unsupported_type", "not_allowed", "bad_params")
RANK = {S.QUEUED: 0, S.SENT: 1, S.RECEIVED: 2, S.RUNNING: 3, **{s: 4 for s in FINAL_STATES}}


def states_below(state: str) -> list[str]:
    """The states a delivery may move to `state` from: lower rank, never final."""
    return [s for s in NON_FINAL_STATES if RANK[s] < RANK[state]]


class Command(models.Model):
    """One issued command. Its rows (this and one Delivery per target) are committed before
    anything is sent. Secret params live only in `secret_params` (Fernet); `params` holds the rest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=32, choices=CommandType.choices, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    secret_params = models.TextField(blank=True)
    is_secret = models.BooleanField(default=False)
    target = models.JSONField(default=dict)
    target_count = models.PositiveIntegerField(default=0)
    issuer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    issuer_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Idempotency-Key: a retry within 24 h by the same issuer returns the original answer.
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    preset = models.ForeignKey("Preset", null=True, blank=True, on_delete=models.SET_NULL, related_name="commands")
    preset_version = models.PositiveIntegerField(null=True, blank=True)
    wifi_config = models.ForeignKey(
        "WifiConfig", null=True, blank=True, on_delete=models.SET_NULL, related_name="commands"
    )
    # "Retry failed": this command sends `retry_of` again to the devices that failed it.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries", db_index=False
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="uniq_command_idempotency_key",
            )
        ]
        # Partial: a command page looks up its retries, and few commands are retries.
        indexes = [
            models.Index(fields=["retry_of"], name="command_retry_of_idx", condition=Q(retry_of__isnull=False))
        ]

    def __str__(self):
        return f"{self.type} {self.id}"

    def full_params(self) -> dict:
        """The real params (secrets decrypted): only for signing envelopes."""
        params = dict(self.params)
        if self.secret_params:
            params.update(crypto.decrypt_json(self.secret_params))
        return params

    def masked_params(self) -> dict:
        params = dict(self.params)
        for name in SECRET_PARAMS.get(self.type, ()):
            if self.secret_params or name in params:
                params[name] = MASK
        return params


class Delivery(models.Model):
    """One command to one device: its per-device seq and its state (PROTOCOL.md "Delivery
    states"). Every transition is a conditional update on `state`."""

    class Channel(models.TextChoices):
        NONE = "", "-"
        PUSH = "push"
        PULL = "pull"

    class Push(models.TextChoices):
        WAITING = "waiting"  # to be pushed
        CLAIMED = "claimed"  # a dispatcher holds it (push_claim, push_claimed_at)
        RETRY = "retry"  # transient FCM error: again after push_after
        PUSHED = "pushed"  # FCM accepted the message
        SKIPPED = "skipped"  # no push (FCM off, no token, TTL over): pull only
        FAILED = "failed"  # permanent FCM error: pull only

    # No single-column indexes of their own: (command, device) and (device, seq) lead with them,
    # and each index is one more entry written by every transition of every delivery.
    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    seq = models.PositiveBigIntegerField()
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=S.QUEUED)
    # Denormalized from the command so the pending query needs no join to skip expired ones.
    expires_at = models.DateTimeField()
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    running_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True)
    output_truncated = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    reason = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    channel = models.CharField(max_length=8, choices=Channel.choices, blank=True, default="")
    push_status = models.CharField(max_length=10, choices=Push.choices, default=Push.SKIPPED)
    push_claim = models.CharField(max_length=64, blank=True)
    push_claimed_at = models.DateTimeField(null=True, blank=True)
    push_after = models.DateTimeField(null=True, blank=True)
    # Cancelled after the device may have got it: ride once in the next heartbeat's `cancelled`.
    notify_cancel = models.BooleanField(default=False)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["device", "seq"], name="uniq_delivery_device_seq"),
            models.UniqueConstraint(fields=["command", "device"], name="uniq_delivery_command_device"),
        ]
        indexes = [
            # The heartbeat/pull query: a device's pending or to-be-notified rows by seq. Partial,
            # so it holds only the few live rows however long the history grows.
            models.Index(
                fields=["device", "seq"],
                name="delivery_pending_idx",
                condition=Q(state__in=["queued", "sent"]) | Q(notify_cancel=True),
            ),
            models.Index(fields=["command", "state"], name="delivery_command_state_idx"),
            models.Index(
                fields=["expires_at"],
                name="delivery_live_expiry_idx",
                condition=Q(state__in=["queued", "sent", "received", "running"]),
            ),
            models.Index(
                fields=["command", "push_status"],
                name="delivery_push_idx",
                condition=Q(push_status__in=["waiting", "claimed", "retry"]),
            ),
        ]

    def __str__(self):
        return f"{self.command_id} -> {self.device_id} #{self.seq} {self.state}"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class DeviceKey(models.Model):
    """A per-device HMAC key for envelopes (PROTOCOL.md "Keys (dual-key)"). The device holds at
    most two: `current` (signs) plus `next` (handed out at least a day before it signs) or
    `previous` (kept until the device's kids show the new set). `retired` rows keep only their
    kid, so kid numbers never repeat for a device."""

    class State(models.TextChoices):
        NEXT = "next"
        CURRENT = "current"
        PREVIOUS = "previous"
        RETIRED = "retired"

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="command_keys")
    kid = models.CharField(max_length=16)
    number = models.PositiveIntegerField()
    key_encrypted = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices)
    created_at = models.DateTimeField()
    activates_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["device", "number"]
        constraints = [
            models.UniqueConstraint(fields=["device", "kid"], name="uniq_device_kid"),
            models.UniqueConstraint(
                fields=["device", "state"], condition=~Q(state="retired"), name="uniq_live_key_state_per_device"
            ),
        ]
        indexes = [models.Index(fields=["state", "activates_at"], name="devicekey_activation_idx")]

    def __str__(self):  # never the key material
        return f"{self.device_id} {self.kid} ({self.state})"

    @property
    def key(self) -> bytes:
        return crypto.decrypt_bytes(self.key_encrypted)


class ShellAllowRule(models.Model):
    """An allowed argv prefix for `shell` commands: argv is allowed when it starts with the
    prefix element by element (exact string match)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    argv_prefix = models.JSONField()
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["argv_prefix"]

    def __str__(self):
        return " ".join(self.argv_prefix)

    @property
    def label(self) -> str:
        return " ".join(self.argv_prefix)

    def matches(self, argv: list[str]) -> bool:
        prefix = self.argv_prefix
        return len(argv) >= len(prefix) and argv[: len(prefix)] == prefix


class Preset(models.Model):
    """A named, versioned parameter set of one command type. Editing makes a new version; a
    command records which version it used."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    type = models.CharField(max_length=32, choices=CommandType.choices)
    params = models.JSONField(default=dict, blank=True)
    description = models.CharField(max_length=300, blank=True)
    category = models.CharField(max_length=50, blank=True)
    is_latest = models.BooleanField(default=True)
    archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="uniq_preset_version"),
            models.UniqueConstraint(fields=["name"], condition=Q(is_latest=True), name="uniq_latest_preset"),
        ]

    def __str__(self):
        return f"{self.name} v{self.version}"


class WifiConfig(models.Model):
    class Security(models.TextChoices):
        OPEN = "open", "Open"
        WPA2 = "wpa2", "WPA2"
        WPA3 = "wpa3", "WPA3"
        EAP = "eap", "EAP"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    ssid = models.CharField(max_length=32)
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.WPA2)
    password_encrypted = models.TextField(blank=True)
    hidden = models.BooleanField(default=False)
    group = models.ForeignKey(
        "devices.DeviceGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="wifi_configs",
        help_text="Devices of this group get it; empty means every device.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.ssid})"

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    def decrypted_password(self) -> str:
        return crypto.decrypt_bytes(self.password_encrypted).decode() if self.password_encrypted else ""


# The policy channel's models live in their own module (commands/policies/) and belong to this app.
from commands.policies.models import Policy, PolicyAssignment, PolicyVersion  # noqa: E402,F401
