"""What an APK says about itself, read with pyaxmlparser (docs/apks.md: why this library): the
manifest (package, versions, SDKs, label, debuggable) and the signing certificate, from the v3
or v2 signing block, else the v1 (JAR) signature. Nothing here parses a format by hand.

Refusals are `Refused(code, detail)` with the detail written for the person who uploaded."""

import hashlib
import logging
import re
import zipfile
from dataclasses import dataclass, field

PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
ABI_RE = re.compile(r"^lib/([A-Za-z0-9_-]+)/[^/]+\.so$")
HASH_CHUNK = 1024 * 1024


class Refused(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class ApkInfo:
    package: str
    version_code: int
    version_name: str
    label: str
    min_sdk: int | None
    target_sdk: int | None
    abis: list[str]
    debuggable: bool
    signer_sha256: str
    signing_schemes: list[str] = field(default_factory=list)


def file_sha256(path) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in bounded chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _int(value) -> int | None:
    try:
        return int(str(value), 0) if value not in (None, "") else None
    except ValueError:
        return None


def _sdk(value) -> int | None:
    number = _int(value)
    return number if number is not None and 0 < number < 10_000 else None


def _text(value, limit: int = 255) -> str:
    text = "" if value is None else str(value)
    text = "".join(ch for ch in text if ch != "\x00" and not 0xD800 <= ord(ch) <= 0xDFFF)
    return text[:limit]


def _apk_class():
    from pyaxmlparser import APK

    class FileAPK(APK):
        """pyaxmlparser's APK, reading the file once for the signing block: its own get_raw()
        keeps a bytearray copy, which io.BytesIO then copies again (three times the APK in
        memory at the peak); immutable bytes are shared by io.BytesIO (once)."""

        def get_raw(self):
            with open(self.filename, "rb") as handle:
                return handle.read()

    return FileAPK


def parse_apk(path) -> ApkInfo:
    """Parse the APK at `path`, or raise Refused (not_an_apk, unsigned)."""
    if not zipfile.is_zipfile(path):
        raise Refused("not_an_apk", "The file is not an APK (not a zip archive).")
    APK = _apk_class()

    # pyaxmlparser logs every oddity of a hostile file at WARNING/ERROR; the refusal says enough.
    logging.getLogger("pyaxmlparser").setLevel(logging.CRITICAL)
    try:
        apk = APK(str(path))
    except Exception:  # any parse failure of an untrusted file means the same to the uploader
        raise Refused("not_an_apk", "The file is not an APK (no readable AndroidManifest.xml).") from None
    package = _text(getattr(apk, "package", "") or "")
    if not apk.is_valid_APK() or not PACKAGE_RE.match(package):
        raise Refused("not_an_apk", "The file is not an APK (its manifest names no valid package).")
    version_code = _int(apk.version_code)
    if version_code is None or not 0 < version_code < 2**63:
        raise Refused("not_an_apk", "The APK's manifest has no valid android:versionCode.")
    try:
        certificate, schemes = _signer(apk)
    except Exception:
        raise Refused("unsigned", "The APK's signature could not be read: sign it with apksigner (v2 or v3 scheme).") from None
    if certificate is None:
        raise Refused("unsigned", "The APK is not signed: Android installs only signed APKs (sign it with apksigner).")
    try:
        label = _text(apk.application)
    except Exception:
        label = ""
    debuggable = str(apk.get_attribute_value("application", "debuggable") or "").lower() in ("true", "1", "0xffffffff", "-1")
    with zipfile.ZipFile(path) as archive:
        abis = sorted({m.group(1) for name in archive.namelist() if (m := ABI_RE.match(name))})
    return ApkInfo(
        package=package,
        version_code=version_code,
        version_name=_text(apk.version_name),
        label=label,
        min_sdk=_sdk(apk.get_min_sdk_version()),
        target_sdk=_sdk(apk.get_target_sdk_version()),
        abis=abis,
        debuggable=debuggable,
        signer_sha256=hashlib.sha256(certificate).hexdigest(),
        signing_schemes=schemes,
    )


def _signer(apk) -> tuple[bytes | None, list[str]]:
    """The signing certificate (DER) Android checks updates against, and the schemes present.
    v3 first (it carries the current certificate after a key rotation), then v2, then v1."""
    schemes, certificate = [], None
    v3 = apk.get_certificates_der_v3() if apk.is_signed_v3() else []
    v2 = apk.get_certificates_der_v2() if apk.is_signed_v2() else []
    v1 = [c.dump() for c in apk.get_certificates_v1()] if apk.is_signed_v1() else []
    for name, found in (("v1", v1), ("v2", v2), ("v3", v3)):
        if found:
            schemes.append(name)
    for found in (v3, v2, v1):
        if found:
            certificate = found[0]
            break
    return certificate, schemes
