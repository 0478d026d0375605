import uuid
from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from mdm import text


class EqualityIndex(models.Index):
    """A hash index on PostgreSQL, a plain one elsewhere (SQLite, the embedded default).

    For a column looked up only by equality whose values may be longer than a btree entry can
    hold: a btree index row is limited to about 2,700 bytes, and a protocol FCM token may be
    4,096 code points (up to 16 KiB of UTF-8), which one such value would turn into an error on
    every write of it. A hash index keeps a 4-byte hash per row whatever the value's length."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            using = " USING hash"
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class DeviceGroup(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Tag(models.Model):
    name = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class DeviceQuerySet(models.QuerySet):
    def active(self):
        """Devices not deleted by an admin (deleted ones keep a row so their hardware id stays
        retired until restored, and so the purge worker can find their history)."""
        return self.filter(deleted_at__isnull=True)

    def for_user(self, user):
        # Every role sees the whole fleet today; scoping by group per user would go here.
        return self.active() if user.is_authenticated else self.none()

    def online(self):
        return self.filter(status__online=True)


class Device(models.Model):
    """An enrolled Android device. `id` is the public device_id of PROTOCOL.md."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hardware_id = models.CharField(max_length=128, unique=True)
    serial = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=128, blank=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    android_version = models.CharField(max_length=32, blank=True)
    sdk_int = models.PositiveSmallIntegerField(null=True, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)
    alias = models.CharField(max_length=128, blank=True, db_index=True)
    group = models.ForeignKey(DeviceGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices")
    tags = models.ManyToManyField(Tag, blank=True, related_name="devices")

    # Device token "<token_id>.<secret>": token_id finds the row in O(1); the secret is kept only
    # as a bcrypt hash, checked once and then remembered in the verified-token cache.
    token_id = models.CharField(max_length=32, unique=True, null=True, blank=True)
    token_hash = models.CharField(max_length=100, blank=True)
    token_issued_at = models.DateTimeField(null=True, blank=True)
    token_used_at = models.DateTimeField(null=True, blank=True)

    # PROTOCOL.md v1.1: up to 4,096 code points; looked up by equality only (EqualityIndex).
    fcm_token = models.CharField(max_length=text.max_length("fcm_token"), blank=True)
    # Per-device command sequence: the next Delivery.seq (claimed with an F() update).
    next_seq = models.PositiveBigIntegerField(default=1)

    enrolled_at = models.DateTimeField(default=timezone.now)
    last_enrolled_at = models.DateTimeField(default=timezone.now)
    enrollment_count = models.PositiveIntegerField(default=1)
    enrolled_with = models.CharField(max_length=100, blank=True, help_text="Name of the enrollment key used last.")
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    objects = DeviceQuerySet.as_manager()

    class Meta:
        ordering = ["hardware_id"]
        indexes = [EqualityIndex(fields=["fcm_token"], name="device_fcm_token_eq")]

    def __str__(self):
        return self.alias or self.model or self.hardware_id

    @property
    def display_name(self) -> str:
        return self.alias or f"{self.manufacturer} {self.model}".strip() or self.hardware_id

    @property
    def is_retired(self) -> bool:
        return self.deleted_at is not None


class DeviceStatus(models.Model):
    """The latest telemetry of one device: updated on every heartbeat, the only thing lists and the
    API read (O(1) per device). Field names are the heartbeat's own."""

    class Network(models.TextChoices):
        WIFI = "wifi"
        CELLULAR = "cellular"
        ETHERNET = "ethernet"
        VPN = "vpn"
        BLUETOOTH = "bluetooth"
        OTHER = "other"
        NONE = "none"

    device = models.OneToOneField(Device, primary_key=True, on_delete=models.CASCADE, related_name="status")
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)
    online = models.BooleanField(default=False, db_index=True)
    battery_pct = models.PositiveSmallIntegerField(null=True, blank=True)
    charging = models.BooleanField(null=True, blank=True)
    battery_temp_c = models.FloatField(null=True, blank=True)
    mem_total_mb = models.PositiveIntegerField(null=True, blank=True)
    mem_avail_mb = models.PositiveIntegerField(null=True, blank=True)
    storage_total_mb = models.PositiveIntegerField(null=True, blank=True)
    storage_free_mb = models.PositiveIntegerField(null=True, blank=True)
    network_type = models.CharField(max_length=16, choices=Network.choices, blank=True)
    wifi_ssid = models.CharField(max_length=64, null=True, blank=True)
    wifi_rssi = models.SmallIntegerField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # Text columns hold what the protocol admits (PROTOCOL.md v1.1 "Text": 256 code points).
    foreground_app = models.CharField(max_length=text.DEFAULT_MAX, blank=True)
    uptime_s = models.PositiveBigIntegerField(null=True, blank=True)
    agent_version = models.CharField(max_length=text.DEFAULT_MAX, blank=True)
    apps_hash = models.CharField(max_length=64, blank=True)
    device_time = models.BigIntegerField(null=True, blank=True)
    clock_drift_s = models.IntegerField(null=True, blank=True)
    kids = models.JSONField(default=list, blank=True)
    # v1.1 telemetry, stored as accepted (the policy channel decides what they mean).
    os_version = models.CharField(max_length=text.DEFAULT_MAX, blank=True)
    security_patch = models.DateField(null=True, blank=True)
    pending_system_update = models.JSONField(null=True, blank=True)
    policy_version = models.PositiveBigIntegerField(null=True, blank=True)
    lock_task_active = models.BooleanField(null=True, blank=True)
    usage_access = models.BooleanField(null=True, blank=True)
    battery_optimization_exempt = models.BooleanField(null=True, blank=True)
    # Cumulative: bigint, so no count of bad envelopes, however large, fails the status write.
    bad_envelopes_total = models.PositiveBigIntegerField(default=0)
    last_bad_envelope_at = models.DateTimeField(null=True, blank=True)
    last_history_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 (PROTOCOL.md apps_hash) of the stored inventory, compared with each heartbeat's.
    inventory_hash = models.CharField(max_length=64, blank=True)
    inventory_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "device statuses"
        indexes = [models.Index(fields=["battery_pct"], name="devstatus_battery_idx")]

    @property
    def mem_used_pct(self) -> int | None:
        if not self.mem_total_mb or self.mem_avail_mb is None:
            return None
        return round(100 * (self.mem_total_mb - self.mem_avail_mb) / self.mem_total_mb)

    @property
    def storage_used_pct(self) -> int | None:
        if not self.storage_total_mb or self.storage_free_mb is None:
            return None
        return round(100 * (self.storage_total_mb - self.storage_free_mb) / self.storage_total_mb)

    def is_online(self, now: datetime, threshold_s: int) -> bool:
        return self.last_seen is not None and now - self.last_seen <= timedelta(seconds=threshold_s)

    def __str__(self):
        return f"status of {self.device_id}"


class HeartbeatSample(models.Model):
    """Telemetry history, at most one row per device per 10 s. On PostgreSQL the table is range
    partitioned by day on `at` (see the migration and devices.partitions); the partition key must
    be part of the primary key, hence the composite key."""

    pk = models.CompositePrimaryKey("device_id", "at")
    # No FK constraint and no extra index: the primary key (device_id, at) serves both lookups, and
    # the purge worker removes a deleted device's rows in batches.
    device = models.ForeignKey(
        Device, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    at = models.DateTimeField()
    battery_pct = models.PositiveSmallIntegerField(null=True)
    charging = models.BooleanField(null=True)
    battery_temp_c = models.FloatField(null=True)
    mem_avail_mb = models.PositiveIntegerField(null=True)
    storage_free_mb = models.PositiveIntegerField(null=True)
    network_type = models.CharField(max_length=16, blank=True)
    wifi_rssi = models.SmallIntegerField(null=True)

    class Meta:
        managed = True
        ordering = ["at"]

    def __str__(self):
        return f"{self.device_id} @ {self.at}"


class InstalledApp(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="apps")
    package = models.CharField(max_length=text.DEFAULT_MAX)
    version_name = models.CharField(max_length=text.DEFAULT_MAX, blank=True)
    version_code = models.BigIntegerField(null=True)
    system = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["package"]
        constraints = [models.UniqueConstraint(fields=["device", "package"], name="uniq_app_per_device")]

    def __str__(self):
        return f"{self.package} {self.version_name}"


class FlushClaim(models.Model):
    """A heartbeat flush's claim (devices.writebehind) that carried `bad_envelopes` counts.

    Those counts are added, not overwritten, so applying a claim twice would count them twice.
    The flush writes `applied` in the same transaction as the counts; a flush that finds a claim
    gone stale (its flusher died) writes `abandoned` before it puts the counts back in the queue.
    The primary key makes the two exclusive: whichever commits first decides, and the other
    waits for it on the key and then reads the outcome."""

    class State(models.TextChoices):
        APPLIED = "applied"
        ABANDONED = "abandoned"

    claim = models.CharField(max_length=64, primary_key=True)
    state = models.CharField(max_length=16, choices=State.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self):
        return f"{self.claim} {self.state}"


class DevicePolicyState(models.Model):
    """The device's policy as the policy channel resolved it (commands/ writes `policy_id` and
    `version` on every edit or assignment that changes them) and as the device last reported it
    (PUT /api/v1/device/policy/status). It lives here, on the devices side, so that the device
    list's one FilterSet can filter and count compliance without importing the app above.

    Compliant: `version` > 0 and the device reported exactly that version with every item
    `applied` (`all_applied` is computed for `applied_version` at report time, so an edit that
    moves `version` needs no rewrite of it)."""

    device = models.OneToOneField(Device, primary_key=True, on_delete=models.CASCADE, related_name="policy_state")
    # commands.Policy's id; no foreign key: devices/ sits below commands/ (docs/ARCHITECTURE.md).
    policy_id = models.UUIDField(null=True, blank=True, db_index=True)
    version = models.PositiveBigIntegerField(default=0)  # 0: no policy
    applied_version = models.PositiveBigIntegerField(null=True, blank=True)
    all_applied = models.BooleanField(default=False)
    items = models.JSONField(default=dict, blank=True)  # {item: {"state", "reason"}} as last reported
    reported_at = models.DateTimeField(null=True, blank=True)

    @property
    def compliant(self) -> bool:
        return self.version > 0 and self.applied_version == self.version and self.all_applied

    def __str__(self):
        return f"policy state of {self.device_id}"


class FleetSample(models.Model):
    """The fleet's size and how much of it was online, once per 5 minutes (devices.fleet_stats),
    for the dashboard's "online over time". Written by the offline sweep, which counts the fleet
    anyway; at most 288 rows a day whatever the fleet's size, and pruned past fleet_stats.KEEP."""

    at = models.DateTimeField(primary_key=True)  # the start of its 5-minute bucket (UTC)
    total = models.PositiveIntegerField()
    online = models.PositiveIntegerField()

    class Meta:
        ordering = ["at"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.online}/{self.total} online"
