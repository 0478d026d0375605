"""Envelope signing (PROTOCOL.md "Envelope"). The payload is serialized once, signed as those
exact UTF-8 bytes, and sent as that same text, so the device verifies what it will parse."""

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping


def encode_payload(payload: Mapping) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def sign(key: bytes, payload_text: str) -> str:
    return hmac.new(key, payload_text.encode("utf-8"), hashlib.sha256).hexdigest()


def make_envelope(*, payload: Mapping, kid: str, key: bytes) -> dict:
    text = encode_payload(payload)
    return {"payload": text, "kid": kid, "sig": sign(key, text)}


def decode_key(b64: str) -> bytes:
    return base64.b64decode(b64)


class Rejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BadEnvelope(Exception):
    """Unknown kid or a signature that does not verify: the id must not be trusted."""


GRACE_S = 120
MAX_LIFETIME_S = 30 * 86400


def verify(envelope: Mapping, keys: Mapping[str, bytes], *, device_id: str, server_now: int) -> dict:
    """The reference verifier of the device rules 1-2 (tests use it on what the server serves):
    returns the payload, raises BadEnvelope (rule 1) or Rejected(reason) (rule 2)."""
    key = keys.get(envelope.get("kid"))
    sig = envelope.get("sig")
    if key is None or not isinstance(sig, str):
        raise BadEnvelope("unknown kid")
    try:
        given = bytes.fromhex(sig)
    except ValueError as exc:
        raise BadEnvelope("signature is not hex") from exc
    expected = hmac.new(key, envelope["payload"].encode("utf-8"), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise BadEnvelope("bad signature")
    payload = json.loads(envelope["payload"])
    if payload.get("device_id") != device_id:
        raise Rejected("wrong_device")
    if payload["expires_at"] + GRACE_S < server_now or payload["expires_at"] - payload["issued_at"] > MAX_LIFETIME_S:
        raise Rejected("expired")
    return payload


def keyring(pairs: Iterable[Mapping]) -> dict[str, bytes]:
    return {p["kid"]: decode_key(p["key"]) for p in pairs}
