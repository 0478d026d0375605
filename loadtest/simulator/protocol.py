"""The device rules of PROTOCOL.md that the simulator applies on its own side: envelope
verification (rules 1 and 2), the policy document's (v1.1: signed and judged exactly like an
envelope), and the jittered backoff every retry waits."""

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
    payload = json.loads(_signed_text(envelope, "payload", keys))
    if payload.get("device_id") != device_id:
        raise Rejected("wrong_device", payload["id"])
    issued, expires = payload.get("issued_at", 0), payload.get("expires_at", 0)
    if expires + GRACE_S < server_now or expires - issued > MAX_LIFETIME_S:
        raise Rejected("expired", payload["id"])
    return payload


class PolicyForAnotherDevice(Exception):
    """Rule 2 for a policy: signed, but naming another device. Never applied; reported failed."""

    def __init__(self, document: dict):
        super().__init__("wrong_device")
        self.document = document


def _signed_text(answer: dict, text_field: str, keys: dict[str, bytes]) -> str:
    """Rule 1: the text, once its signature verifies with the key of its kid; else BadEnvelope."""
    key = keys.get(answer.get("kid"))
    text, sig = answer.get(text_field), answer.get("sig")
    if key is None or not isinstance(text, str) or not isinstance(sig, str):
        raise BadEnvelope("unknown kid or malformed envelope")
    try:
        given = bytes.fromhex(sig)
    except ValueError as exc:
        raise BadEnvelope("signature is not hex") from exc
    expected = hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise BadEnvelope("bad signature")
    return text


def verify_policy(answer, keys: dict[str, bytes], *, device_id: str) -> tuple[str, dict]:
    """GET /api/v1/device/policy's {"policy", "kid", "sig"}: (the text as signed, the document),
    or BadEnvelope (rule 1, also for a signed text that is not a policy document) or
    PolicyForAnotherDevice (rule 2). A policy has no expiry: it is the desired state until a newer one."""
    if not isinstance(answer, dict):
        raise BadEnvelope("not an object")
    text = _signed_text(answer, "policy", keys)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise BadEnvelope("not a policy document") from exc
    if not isinstance(document, dict):
        raise BadEnvelope("not a policy document")
    version, items = document.get("version"), document.get("items")
    if (not isinstance(document.get("device_id"), str) or isinstance(version, bool) or not isinstance(version, int)
            or version < 0 or (items is not None and not isinstance(items, dict))):
        raise BadEnvelope("not a policy document")
    document["items"] = items or {}
    if document["device_id"] != device_id:
        raise PolicyForAnotherDevice(document)
    return text, document


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
