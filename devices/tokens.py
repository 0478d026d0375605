"""Device tokens: "<token_id>.<secret>". bcrypt at rest (the user's choice), O(1) lookup by
token_id, and no bcrypt on the hot path: a verified token is remembered in Redis (the cache of
the embedded default without it) as the SHA-256 of its secret, keyed by token_id. Revocation deletes that cache entry on
commit, so a revoked token fails on its very next request in every process (no local caches)."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

import bcrypt
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from mdm import redis_client

CACHE_PREFIX = "devtok:"
CACHE_TTL_S = 6 * 3600
# bcrypt's work factor protects guessable secrets (passwords) against offline guessing. A device
# token's secret is 256 random bits: no work factor adds to that, while each round doubles the
# CPU an enrollment storm and every cold-cache first heartbeat spend (cost 10 measured ~70 ms per
# check; 2,000 devices = 140 CPU-seconds). Cost 4, bcrypt's minimum, is ~1 ms.
BCRYPT_ROUNDS = 4


@dataclass(frozen=True)
class IssuedToken:
    token: str  # returned to the device once, never stored
    token_id: str
    token_hash: str


def issue() -> IssuedToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    token_hash = bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()
    return IssuedToken(token=f"{token_id}.{secret}", token_id=token_id, token_hash=token_hash)


def split(token: str) -> tuple[str, str] | None:
    token_id, dot, secret = token.partition(".")
    if not dot or not token_id or not secret or len(token_id) > 32 or len(secret) > 128:
        return None
    return token_id, secret


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verify(token: str) -> str | None:
    """The device id for a valid token, else None. One cache read on the hot path; one DB read
    and one bcrypt check when the cache does not know the token yet."""
    parts = split(token)
    if parts is None:
        return None
    token_id, secret = parts
    cached = _recall(token_id)
    if cached is not None:
        device_id, known = cached
        return device_id if hmac.compare_digest(known, digest(secret)) else None

    from devices.models import Device

    row = (
        Device.objects.filter(token_id=token_id, deleted_at__isnull=True)
        .values_list("id", "token_hash")
        .first()
    )
    if row is None or not row[1]:
        return None
    device_id, token_hash = str(row[0]), row[1]
    if not bcrypt.checkpw(secret.encode(), token_hash.encode()):
        return None
    # Only this slow path runs on a token's first use, so marking it here costs no write on
    # ordinary heartbeats (the cache answers those).
    from devices.services import mark_token_used

    mark_token_used(token_id=token_id)
    _remember(token_id, device_id, digest(secret))
    return device_id


def forget_on_commit(token_id: str | None) -> None:
    """Call inside the transaction that revokes token_id (re-enrollment, deletion)."""
    if token_id:
        transaction.on_commit(lambda: _forget(token_id))


# The verified-token cache. With Redis it is a plain string key read through the project's one
# Redis client: Django's Redis cache builds a new client object on every call and pickles the
# value, which measured ~0.13 ms of CPU per heartbeat (cProfile, docs/performance.md).
def cache_key(token_id: str) -> str:
    """The token's entry in the verified-token cache ("<device id>:<digest>"), which the
    heartbeat's Lua call reads itself (devices.writebehind)."""
    return f"{settings.CACHE_PREFIX}:{CACHE_PREFIX}{token_id}"


def _recall(token_id: str) -> tuple[str, str] | None:
    client = redis_client.client()
    if client is None:
        return cache.get(CACHE_PREFIX + token_id)
    raw = client.get(cache_key(token_id))
    if raw is None:
        return None
    device_id, _, known = raw.decode().partition(":")
    return device_id, known


def _remember(token_id: str, device_id: str, secret_digest: str) -> None:
    client = redis_client.client()
    if client is None:
        cache.set(CACHE_PREFIX + token_id, (device_id, secret_digest), CACHE_TTL_S)
    else:
        client.set(cache_key(token_id), f"{device_id}:{secret_digest}", ex=CACHE_TTL_S)


def _forget(token_id: str) -> None:
    client = redis_client.client()
    if client is None:
        cache.delete(CACHE_PREFIX + token_id)
    else:
        client.delete(cache_key(token_id))


# The token check and a request's own Redis work in one round trip (the policy fetch's reads, the
# policy report's queueing): on a 2-core server each round trip is worker time, not only latency
# (docs/performance.md), and a policy change makes every device of the fleet fetch and report in
# the same interval. KEYS[1] the token's cache entry, KEYS[2] (optional) a list; ARGV[1] the
# secret's digest, ARGV[2] what to push onto KEYS[2] after '<device id>|', ARGV[3..] key
# prefixes: '<prefix><device id>' is read for each, in order.
_CHECKED = """
local token = redis.call('GET', KEYS[1])
if not token then return {'unknown'} end
local sep = string.find(token, ':', 1, true)
if (not sep) or string.sub(token, sep + 1) ~= ARGV[1] then return {'invalid'} end
local device_id = string.sub(token, 1, sep - 1)
if KEYS[2] then redis.call('RPUSH', KEYS[2], device_id .. '|' .. ARGV[2]) end
local out = {'ok', device_id}
for i = 3, #ARGV do out[#out + 1] = redis.call('GET', ARGV[i] .. device_id) or false end
return out
"""


@dataclass(frozen=True)
class Checked:
    device_id: str | None  # None: the token is not valid (401)
    # With Redis and the token in its cache: the values read, one per prefix (None where absent),
    # and whether the entry was pushed. Else None and False: the caller reads and writes as usual.
    values: tuple | None = None
    pushed: bool = False


@lru_cache(maxsize=2)
def _checked_script(client):
    return client.register_script(_CHECKED)  # EVALSHA: the script's text is not sent per request


def verify_with(token: str, *, read_prefixes: tuple[str, ...] = (), push_to: str | None = None,
                entry: str = "") -> Checked:
    """verify(), and in the same Redis call the device's keys under `read_prefixes` read and
    (with `push_to`) '<device id>|<entry>' pushed onto that list, only for a valid token. A token
    the cache does not know yet (its first use), no Redis, or Redis failing: verify() alone, as
    every other device request does, and nothing read or pushed."""
    parts = split(token)
    if parts is None:
        return Checked(None)
    client = redis_client.client()
    if client is not None:
        token_id, secret = parts
        keys = [cache_key(token_id)] + ([push_to] if push_to else [])
        try:
            answer = _checked_script(client)(keys=keys, args=[digest(secret), entry, *read_prefixes])
        except redis.RedisError:
            answer = [b"unknown"]
        status = answer[0].decode()
        if status == "invalid":
            return Checked(None)
        if status == "ok":
            return Checked(answer[1].decode(), tuple(answer[2:]), pushed=bool(push_to))
    return Checked(verify(token))
