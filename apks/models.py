import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from apks import storage


class ReleaseQuerySet(models.QuerySet):
    def for_user(self, user):
        # Every signed-in role reads every release (viewers included), as with devices.
        return self if getattr(user, "is_authenticated", False) else self.none()


class Release(models.Model):
    """One APK as uploaded: what its manifest and signing block say, and the stored file.
    Immutable once created (a new build is a new release); `agent` and deletion are the only
    changes, both through apks.services."""

    class Via(models.TextChoices):
        CONSOLE = "console", "console"
        API = "api", "API"
        CI = "ci", "CI (API key)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    package = models.CharField(max_length=255)
    version_code = models.BigIntegerField()
    version_name = models.CharField(max_length=255, blank=True)
    label = models.CharField(max_length=255, blank=True)
    min_sdk = models.PositiveSmallIntegerField(null=True, blank=True)
    target_sdk = models.PositiveSmallIntegerField(null=True, blank=True)
    abis = models.JSONField(default=list, blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # SHA-256 of the signing certificate (DER), lowercase hex: from the v3 or v2 signing block,
    # else the v1 (JAR) signature. What Android compares when it installs an update.
    signer_sha256 = models.CharField(max_length=64, db_index=True)
    signing_schemes = models.JSONField(default=list, blank=True)  # ["v1", "v2", "v3"] as found
    debuggable = models.BooleanField(default=False)
    channel = models.CharField(max_length=32, default="stable")
    notes = models.TextField(blank=True)
    filename = models.CharField(max_length=255, blank=True)  # as uploaded, for people
    file = models.FileField(storage=storage.release_storage, upload_to="apks/", max_length=500)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_by_label = models.CharField(max_length=200, blank=True)
    uploaded_via = models.CharField(max_length=10, choices=Via.choices, default=Via.CONSOLE)
    signer_change_confirmed_by = models.CharField(max_length=200, blank=True)
    # The agent APK the QR builder and the adb one-liners offer (at most one release).
    agent = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_index=True)

    objects = ReleaseQuerySet.as_manager()

    class Meta:
        ordering = ["package", "-version_code"]
        constraints = [
            models.UniqueConstraint(fields=["package", "version_code"], name="uniq_release_package_version"),
            models.UniqueConstraint(fields=["agent"], condition=Q(agent=True), name="uniq_agent_release"),
        ]
        indexes = [models.Index(fields=["package", "channel", "-version_code"], name="release_pkg_channel_idx")]

    def __str__(self):
        return f"{self.package} {self.version_name} ({self.version_code})"


class Upload(models.Model):
    """A tus 1.0 upload (apks.tus): bytes staged in a file under APK_UPLOAD_DIR as they arrive,
    then parsed by a worker into a Release (or refused, saying why). `offset` only moves under a
    writer's claim (`writer`), taken and released by conditional updates, so two PATCHes on one
    upload never interleave (apks.services.uploads)."""

    class State(models.TextChoices):
        UPLOADING = "uploading"
        COMPLETE = "complete"  # all bytes in: waiting for the parse task
        PARSING = "parsing"
        DONE = "done"
        REFUSED = "refused"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)  # Upload-Metadata, decoded (filename, channel, notes)
    state = models.CharField(max_length=10, choices=State.choices, default=State.UPLOADING, db_index=True)
    writer = models.CharField(max_length=64, blank=True)  # the PATCH that holds the upload
    writer_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_label = models.CharField(max_length=200)
    api_key_id = models.UUIDField(null=True, blank=True)  # the key that created it (it alone may continue it)
    via = models.CharField(max_length=10, choices=Release.Via.choices)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    parse_started_at = models.DateTimeField(null=True, blank=True)
    allow_signer_change = models.BooleanField(default=False)  # an admin confirmed a refused signer change
    signer_confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    signer_confirmed_by_label = models.CharField(max_length=200, blank=True)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    refusal_code = models.CharField(max_length=32, blank=True)
    refusal_detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"upload {self.id} {self.offset}/{self.length} {self.state}"

    @property
    def staging_path(self):
        return settings.APK_UPLOAD_DIR / f"{self.id}.part"

    @property
    def filename(self) -> str:
        return self.metadata.get("filename", "")


class Rollout(models.Model):
    """A release deployed to a target in waves (apks.services.rollouts). The devices are chosen
    once, at creation (target narrowed by the version filters), and split into waves; each wave
    is one install_apk command. A wave passes when its soak time is over and at least
    (100 - threshold_pct)% of its devices installed; the rollout halts as soon as more than
    threshold_pct% of a wave failed, and waits for an admin."""

    class State(models.TextChoices):
        RUNNING = "running"
        PAUSED = "paused"  # by an admin: no further wave starts
        HALTED = "halted"  # by the threshold: waits for an admin
        COMPLETED = "completed"
        ROLLED_BACK = "rolled_back"

    LIVE_STATES = (State.RUNNING, State.PAUSED, State.HALTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="rollouts")
    # What a roll back installs: the release before this one (PROTECT: retention keeps it).
    previous_release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    target = models.JSONField(default=dict)  # the command target spec, normalized
    versions = models.JSONField(default=list)  # the version filters: installed states included
    sdk_check = models.BooleanField(default=True)
    waves_spec = models.JSONField(default=list)  # [{"percent": 10}, ...] or [{"group": "lab"}, ...]
    soak_s = models.PositiveIntegerField()
    threshold_pct = models.FloatField()
    expires_in_s = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RUNNING, db_index=True)
    current_wave = models.PositiveSmallIntegerField(default=0)
    reason = models.TextField(blank=True)  # why it halted (or what it waits for)
    # A roll back's commands: uninstall_app, then install_apk of previous_release (seq order).
    rollback_commands = models.ManyToManyField("commands.Command", blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"rollout of {self.release} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE_STATES


class RolloutWave(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"  # issued, soaking
        PASSED = "passed"
        HALTED = "halted"  # past the threshold
        ACCEPTED = "accepted"  # halted, then an admin resumed past it

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="waves")
    index = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=160)  # "10%" or "group lab"
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    # The install_apk commands of this wave: the first, then any retry of its failed devices.
    commands = models.ManyToManyField("commands.Command", blank=True, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "index"]
        constraints = [models.UniqueConstraint(fields=["rollout", "index"], name="uniq_rollout_wave")]

    def __str__(self):
        return f"wave {self.index + 1} ({self.label}) {self.state}"

    @property
    def number(self) -> int:
        return self.index + 1


class RolloutDevice(models.Model):
    """One device of a rollout: its wave, and the delivery of the install that counts for it
    (the latest: a retry replaces a failed one). `skipped` says why a device chosen at creation
    got nothing when its wave started (it has the release by then, or it was deleted)."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="devices")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+")
    wave = models.PositiveSmallIntegerField()
    delivery = models.ForeignKey("commands.Delivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    skipped = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "device"], name="uniq_rollout_device")]
        indexes = [models.Index(fields=["rollout", "wave"], name="rollout_device_wave_idx")]
