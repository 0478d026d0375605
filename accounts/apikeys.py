"""Scoped API keys: `Authorization: Api-Key mdmk_<prefix>_<secret>` (DRF authentication).

At rest only SHA-256(key) is kept. A slow hash (bcrypt, as for device tokens and passwords)
protects secrets people choose or that are short; this one is 32 random bytes from `secrets`
(256 bits), which no dictionary or brute force reaches, so a fast hash loses nothing and costs
nothing per request. The prefix finds the row (unique index), the hash is compared in constant
time. A key authenticates as an ApiKeyPrincipal, never as the admin who made it: it has no role,
so every endpoint that checks roles refuses it (403), and only those that accept its scope
(accounts.permissions.HasScope) let it in."""

import hashlib
import re
import secrets
from datetime import timedelta

from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework import authentication, exceptions

from accounts.models import ApiKey

KEYWORD = "Api-Key"
KEY_RE = re.compile(r"^mdmk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(raw key, prefix)."""
    prefix = secrets.token_hex(6)
    return f"mdmk_{prefix}_{secrets.token_urlsafe(32)}", prefix


def verify(raw: str, now=None) -> ApiKey | None:
    match = KEY_RE.match(raw or "")
    if not match:
        return None
    key = ApiKey.objects.filter(prefix=match.group(1)).first()
    now = now or timezone.now()
    if key is None or not constant_time_compare(key.key_hash, hash_key(raw)) or not key.is_usable(now):
        return None
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)  # a throttled write, not one per request
        key.last_used_at = now
    return key


class ApiKeyPrincipal:
    """request.user for a request made with an API key. It has no role, and it answers False to
    is_authenticated: whatever asks "is someone signed in?" (IsAuthenticated, for_user(),
    templates) treats a key as nobody, so a key reaches only what checks its scope explicitly.
    DRF still knows the request authenticated (a refusal is a 403, not a 401)."""

    is_authenticated = False
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_admin_role = False
    is_operator_role = False
    pk = id = None

    def __init__(self, key: ApiKey):
        self.api_key = key
        self.username = f"key:{key.name}"

    def __str__(self):
        return self.username

    def get_username(self) -> str:
        return self.username

    def has_role(self, role: str) -> bool:
        return False

    def has_perm(self, *args, **kwargs) -> bool:
        return False


def audit_actor(user):
    """What services record as the actor: the user, or "key:<name>" for an API key."""
    return user.username if isinstance(user, ApiKeyPrincipal) else user


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send Authorization: Api-Key <key>.", code="api_key_invalid")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="api_key_invalid") from None
        key = verify(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.", code="api_key_invalid")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return KEYWORD


try:  # the scheme in the OpenAPI document (drf-spectacular)
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ApiKeyScheme(OpenApiAuthenticationExtension):
        target_class = "accounts.apikeys.ApiKeyAuthentication"
        name = "apiKey"

        def get_security_definition(self, auto_schema):
            return {"type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "`Api-Key mdmk_<prefix>_<secret>` (scoped: apk:upload, apk:read)"}
except ImportError:  # pragma: no cover
    pass
