"""Zero-touch provisioning: the Android QR code payload (Device Owner) and the adb one-liner
scripts. Pure functions plus one network fetch (the APK, to checksum it)."""

import base64
import hashlib
import io
import json
import re
import shlex
import zipfile
from dataclasses import dataclass

import httpx
import segno
from django.template.loader import render_to_string

from enrollment import conf

EXTRA = "android.app.extra."
# Runtime permissions the agent needs; a Device Owner may grant them without prompting.
AGENT_PERMISSIONS = (
    "android.permission.READ_PHONE_STATE",
    "android.permission.ACCESS_FINE_LOCATION",
    "android.permission.ACCESS_BACKGROUND_LOCATION",
    "android.permission.POST_NOTIFICATIONS",
)
PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
SETTING_KEY_RE = re.compile(r"^[A-Za-z0-9_.]{1,100}$")
SETTING_VALUE_RE = re.compile(r"^[A-Za-z0-9_.,:/+@% -]{0,200}$")
WIFI_SECURITY = ("NONE", "WEP", "WPA", "EAP")
EAP_METHODS = ("PEAP", "TLS", "TTLS", "PWD", "SIM", "AKA", "AKA_PRIME")
PHASE2 = ("", "NONE", "PAP", "MSCHAP", "MSCHAPV2", "GTC", "SIM", "AKA", "AKA_PRIME")


class ApkFetchError(Exception):
    pass


def b64url_sha256(data: bytes) -> str:
    """What Android's PROVISIONING_DEVICE_ADMIN_{PACKAGE,SIGNATURE}_CHECKSUM expect: URL-safe
    base64 of the SHA-256, without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def normalise_checksum(value: str) -> str:
    """Accept a checksum pasted as URL-safe or standard base64, with or without padding."""
    return value.strip().replace("+", "-").replace("/", "_").rstrip("=")


@dataclass(frozen=True)
class ApkFacts:
    package_checksum: str
    signature_checksum: str | None
    size: int
    package: str | None


def fetch_apk(url: str) -> ApkFacts:
    """Download the APK (size cap, timeout) and compute its checksums."""
    limit = conf.get("QR_APK_MAX_BYTES")
    try:
        with httpx.stream("GET", url, timeout=conf.get("QR_APK_TIMEOUT_S"), follow_redirects=True) as response:
            if response.status_code != 200:
                raise ApkFetchError(f"The APK URL answered HTTP {response.status_code}.")
            declared = int(response.headers.get("content-length") or 0)
            if declared > limit:
                raise ApkFetchError(f"The APK is larger than {limit // (1024 * 1024)} MiB.")
            buffer = io.BytesIO()
            for chunk in response.iter_bytes():
                buffer.write(chunk)
                if buffer.tell() > limit:
                    raise ApkFetchError(f"The APK is larger than {limit // (1024 * 1024)} MiB.")
    except httpx.HTTPError as exc:
        raise ApkFetchError(f"The APK could not be downloaded: {exc.__class__.__name__}.") from None
    data = buffer.getvalue()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ApkFetchError("The URL does not serve an APK (not a zip archive).")
    signature, package = _signature_and_package(data)
    return ApkFacts(package_checksum=b64url_sha256(data), signature_checksum=signature, size=len(data), package=package)


def _signature_and_package(data: bytes) -> tuple[str | None, str | None]:
    try:
        from pyaxmlparser import APK

        apk = APK(data, raw=True)
        certs = apk.get_certificates_der_v2() or apk.get_certificates_der_v3() or [
            c.dump() for c in apk.get_certificates_v1()
        ]
        return (b64url_sha256(certs[0]) if certs else None), apk.package
    except Exception:  # an unparsable APK still has a package checksum
        return None, None


@dataclass
class QrSpec:
    admin_component: str
    apk_url: str
    package_checksum: str
    signature_checksum: str
    server_url: str
    enroll_key: str
    wifi_ssid: str = ""
    wifi_security: str = "NONE"
    wifi_password: str = ""
    wifi_hidden: bool = False
    eap_method: str = ""
    eap_phase2: str = ""
    eap_identity: str = ""
    eap_anonymous_identity: str = ""
    eap_domain: str = ""
    locale: str = ""
    time_zone: str = ""
    skip_encryption: bool = False
    leave_system_apps: bool = False


def qr_payload(spec: QrSpec) -> dict:
    """The provisioning extras Android reads from the QR code (keys as documented for
    DevicePolicyManager)."""
    payload = {
        EXTRA + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": spec.admin_component,
        EXTRA + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": spec.apk_url,
    }
    if spec.package_checksum:
        payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_PACKAGE_CHECKSUM"] = spec.package_checksum
    if spec.signature_checksum:
        payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM"] = spec.signature_checksum
    if spec.wifi_ssid:
        payload[EXTRA + "PROVISIONING_WIFI_SSID"] = spec.wifi_ssid
        payload[EXTRA + "PROVISIONING_WIFI_SECURITY_TYPE"] = spec.wifi_security
        if spec.wifi_hidden:
            payload[EXTRA + "PROVISIONING_WIFI_HIDDEN"] = True
        if spec.wifi_password and spec.wifi_security != "NONE":
            payload[EXTRA + "PROVISIONING_WIFI_PASSWORD"] = spec.wifi_password
        if spec.wifi_security == "EAP":
            for key, value in (
                ("EAP_METHOD", spec.eap_method),
                ("PHASE2_AUTH", spec.eap_phase2),
                ("IDENTITY", spec.eap_identity),
                ("ANONYMOUS_IDENTITY", spec.eap_anonymous_identity),
                ("DOMAIN", spec.eap_domain),
            ):
                if value and value != "NONE":
                    payload[EXTRA + "PROVISIONING_WIFI_" + key] = value
    if spec.locale:
        payload[EXTRA + "PROVISIONING_LOCALE"] = spec.locale
    if spec.time_zone:
        payload[EXTRA + "PROVISIONING_TIME_ZONE"] = spec.time_zone
    if spec.skip_encryption:
        payload[EXTRA + "PROVISIONING_SKIP_ENCRYPTION"] = True
    if spec.leave_system_apps:
        payload[EXTRA + "PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED"] = True
    payload[EXTRA + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"] = {"server_url": spec.server_url, "enroll_key": spec.enroll_key}
    return payload


def qr_text(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def qr_images(payload: dict) -> tuple[str, str]:
    """(inline SVG markup, PNG data URI) of the QR code."""
    qr = segno.make(qr_text(payload), error="m", micro=False, encoding="utf-8")
    svg = qr.svg_inline(scale=4, border=2, dark="#111827")
    png = qr.png_data_uri(scale=6, border=3)
    return svg, png


def qr_png_bytes(payload: dict) -> bytes:
    out = io.BytesIO()
    segno.make(qr_text(payload), error="m", micro=False, encoding="utf-8").save(out, kind="png", scale=6, border=3)
    return out.getvalue()


# --- adb one-liner ---------------------------------------------------------------------------


@dataclass
class ScriptSpec:
    server_url: str
    enroll_key: str
    apk_url: str
    packages: list[str]  # bloatware to remove for user 0
    settings: list[dict]  # [{"namespace", "key", "value"}]


def _ps_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def render_script(spec: ScriptSpec, shell: str) -> str:
    """The provisioning script for `shell` ("bash" or "powershell"). Every value is validated
    or quoted for that shell; package names and settings are checked against strict patterns."""
    for package in spec.packages:
        if not PACKAGE_RE.match(package):
            raise ValueError(f"invalid package name {package!r}")
    for s in spec.settings:
        if s["namespace"] not in ("system", "secure", "global") or not SETTING_KEY_RE.match(s["key"]) or not SETTING_VALUE_RE.match(str(s["value"])):
            raise ValueError(f"invalid setting {s!r}")
    quote = shlex.quote if shell == "bash" else _ps_quote
    context = {
        "server_url": quote(spec.server_url),
        "enroll_key": quote(spec.enroll_key),
        "apk_url": quote(spec.apk_url),
        "package": conf.get("AGENT_PACKAGE"),
        "admin_receiver": conf.get("AGENT_ADMIN_RECEIVER"),
        "enroll_action": conf.get("AGENT_ENROLL_ACTION"),
        "permissions": AGENT_PERMISSIONS,
        "packages": spec.packages,
        "settings": spec.settings,
    }
    template = "enrollment/provision.sh" if shell == "bash" else "enrollment/provision.ps1"
    return render_to_string(template, context)
