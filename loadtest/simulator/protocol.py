"""The device rules of PROTOCOL.md that the simulator applies on its own side: envelope
verification (rules 1 and 2), and the jittered backoff every retry waits."""

from __future__ import annotations

import hashlib
import hmac
import json
import random

import aiohttp

GRACE_S = 120
MAX_LIFETIME_S = 30 * 86400
SEEN_FORGET_AFTER_S = 86400
FINAL = frozenset({"succeeded", "failed", "rejected"})


class BadEnvelope(Exception):
    """Unknown kid or a signature that does not verify: never report against its id."""


class Rejected(Exception):
    def __init__(self, reason: str, command_id: str):
        super().__init__(reason)
        self.reason = reason
        self.command_id = command_id


def verify_envelope(envelope: dict, keys: dict[str, bytes], *, device_id: str, server_now: float) -> dict:
    """Returns the payload, or raises BadEnvelope (rule 1) or Rejected (rule 2)."""
    if not isinstance(envelope, dict):
        raise BadEnvelope("not an object")
    key = keys.get(envelope.get("kid"))
    payload_text, sig = envelope.get("payload"), envelope.get("sig")
    if key is None or not isinstance(payload_text, str) or not isinstance(sig, str):
        raise BadEnvelope("unknown kid or malformed envelope")
    try:
        given = bytes.fromhex(sig)
    except ValueError as exc:
        raise BadEnvelope("signature is not hex") from exc
    expected = hmac.new(key, payload_text.encode("utf-8"), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise BadEnvelope("bad signature")
    payload = json.loads(payload_text)
    if payload.get("device_id") != device_id:
        raise Rejected("wrong_device", payload["id"])
    issued, expires = payload.get("issued_at", 0), payload.get("expires_at", 0)
    if expires + GRACE_S < server_now or expires - issued > MAX_LIFETIME_S:
        raise Rejected("expired", payload["id"])
    return payload


def backoff_delay(attempt: int, retry_after: float | None = None, base: float = 0.5, cap: float = 30.0) -> float:
    """Full jitter exponential backoff; a server's Retry-After is a floor, jittered upwards by up
    to 50% so that a storm of refused devices does not come back in lockstep."""
    delay = random.uniform(0, min(cap, base * 2**attempt))
    if retry_after is not None:
        delay = max(delay, retry_after * random.uniform(1.0, 1.5))
    return delay


def retry_after_of(response: aiohttp.ClientResponse) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
