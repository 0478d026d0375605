"""Envelopes as served (PROTOCOL.md "Envelope"): built from delivery rows, signed when served
with the device's current key."""

import json
from datetime import datetime

from commands.signing import make_envelope

MAX_PUSH_ENVELOPE_BYTES = 3500


def unix(dt: datetime) -> int:
    return int(dt.timestamp())


def payload(*, command_id, device_id, seq: int, type: str, params: dict, issued_at: datetime, expires_at: datetime) -> dict:
    return {
        "id": str(command_id),
        "device_id": str(device_id),
        "seq": int(seq),
        "type": type,
        "params": params,
        "issued_at": unix(issued_at),
        "expires_at": unix(expires_at),
    }


def build(*, kid: str, key: bytes, **fields) -> dict:
    return make_envelope(payload=payload(**fields), kid=kid, key=key)


def to_text(envelope: dict) -> str:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def fits_push(envelope_text: str) -> bool:
    return len(envelope_text.encode("utf-8")) <= MAX_PUSH_ENVELOPE_BYTES
