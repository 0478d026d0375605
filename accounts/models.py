import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac


class User(AbstractUser):
    """A console/API user. The role decides what they may do: viewers read, operators also run
    commands and manage devices, admins also manage users, enrollment keys and fleet settings.
    Superusers count as admins."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        OPERATOR = "operator", "Operator"
        ADMIN = "admin", "Admin"

    RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address", blank=True, db_index=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    # Null while a self-registered account waits for an admin (it is inactive until then, so it
    # can neither sign in nor use a token). Every other way of creating a user approves at once.
    approved_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # Bumped when the account is deactivated: with the password hash it makes the credential
    # stamp, so sessions and API tokens issued before do not come back on reactivation.
    credential_version = models.PositiveIntegerField(default=0)

    objects = UserManager()

    @property
    def is_pending(self) -> bool:
        return not self.is_active and self.approved_at is None

    def credential_stamp(self, purpose: str, secret: str | None = None) -> str:
        """A keyed digest of the password hash and credential_version: it changes on every
        password change (whatever path sets it) and every deactivation. Sessions carry the
        "session" stamp, API tokens the "jwt" one (accounts/tokens.py)."""
        return salted_hmac(
            f"accounts.User.credential_stamp.{purpose}",
            f"{self.password}\n{self.credential_version}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    # Django checks this on every request of a session (and Channels on every socket connect):
    # the stamp instead of its default HMAC of the password alone.
    def get_session_auth_hash(self) -> str:
        return self.credential_stamp("session")

    def get_session_auth_fallback_hash(self):
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self.credential_stamp("session", secret=secret)

    @property
    def effective_role(self) -> str:
        return self.Role.ADMIN if self.is_superuser else self.role

    def has_role(self, role: str) -> bool:
        return self.is_active and self.RANK[self.effective_role] >= self.RANK[role]

    @property
    def is_operator_role(self) -> bool:
        return self.has_role(self.Role.OPERATOR)

    @property
    def is_admin_role(self) -> bool:
        return self.has_role(self.Role.ADMIN)


class ApiKey(models.Model):
    """A scoped credential for automation (CI uploading APKs): `Authorization: Api-Key <key>`.
    The key is `mdmk_<prefix>_<secret>`: `prefix` finds the row in O(1) and is shown in lists;
    the whole key is kept only as its SHA-256 (accounts.apikeys: why a fast hash is enough for a
    256-bit random secret). It acts only within its scopes, never as its creator."""

    class Scope(models.TextChoices):
        APK_UPLOAD = "apk:upload", "Upload APKs"
        APK_READ = "apk:read", "Read APK releases"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} (mdmk_{self.prefix}_…)"

    def is_usable(self, now) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
