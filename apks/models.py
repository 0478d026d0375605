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
