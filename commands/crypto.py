"""Encryption at rest for secret command params, Wi-Fi passwords and command keys.

Fernet (AES-128-CBC + HMAC-SHA256) with FIELD_ENCRYPTION_KEY, a comma-separated list of Fernet
keys (the first encrypts, all decrypt: that is how the key is rotated). When it is unset, a key
is derived from SECRET_KEY with HKDF, which keeps the embedded default working with no setup but
ties the ciphertexts to SECRET_KEY: production sets FIELD_ENCRYPTION_KEY.
"""

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

__all__ = ["InvalidToken", "decrypt_bytes", "decrypt_json", "encrypt_bytes", "encrypt_json"]


def derived_key(secret_key: str) -> str:
    """The Fernet key the embedded default derives from SECRET_KEY (and every server did before
    FIELD_ENCRYPTION_KEY was required): what an upgraded server lists after its new key."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"mdm-field-encryption", info=b"v1").derive(secret_key.encode())
    return base64.urlsafe_b64encode(derived).decode()


@lru_cache(maxsize=4)
def _fernet_for(field_key: str, secret_key: str) -> MultiFernet:
    keys = [k.strip() for k in field_key.split(",") if k.strip()] or [derived_key(secret_key)]
    return MultiFernet([Fernet(k) for k in keys])


def _fernet() -> MultiFernet:
    return _fernet_for(settings.FIELD_ENCRYPTION_KEY or "", settings.SECRET_KEY)


def encrypt_bytes(data: bytes) -> str:
    return _fernet().encrypt(data).decode()


def decrypt_bytes(token: str) -> bytes:
    return _fernet().decrypt(token.encode())


def encrypt_json(value: Any) -> str:
    return encrypt_bytes(json.dumps(value, separators=(",", ":")).encode())


def decrypt_json(token: str) -> Any:
    return json.loads(decrypt_bytes(token))


if __name__ == "__main__":  # SECRET_KEY=... python -m commands.crypto derived-key (no settings needed)
    import os
    import sys

    if sys.argv[1:] != ["derived-key"] or not os.environ.get("SECRET_KEY"):
        sys.exit("usage: SECRET_KEY=... python -m commands.crypto derived-key")
    print(derived_key(os.environ["SECRET_KEY"]))
