"""Zero-touch provisioning: the Android QR code payload (Device Owner), and the APK facts both it
and the adb scripts (enrollment.scripts) rely on. Pure functions plus one network fetch (the APK,
to checksum it)."""

import asyncio
import base64
import hashlib
import io
import ipaddress
import json
import re
import socket
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import segno

from enrollment import conf

EXTRA = "android.app.extra."
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


# The agent release an admin marked on the APK page: apks/ sits above enrollment/ in the app
# order, so it registers a provider here at start-up (apks.apps). provider() -> AgentApk or None.
@dataclass(frozen=True)
class AgentApk:
    url: str
    facts: ApkFacts
    sha256: str  # lowercase hex: what the adb scripts check the download against
    label: str = ""  # package and version, for people


_agent_apk_provider = None


def register_agent_apk(provider) -> None:
    global _agent_apk_provider
    _agent_apk_provider = provider


def agent_apk() -> AgentApk | None:
    """The marked agent release: the QR builder and the one-liners offer its URL and take its
    checksums from it instead of downloading it."""
    return _agent_apk_provider() if _agent_apk_provider else None


def fetch_apk(url: str) -> ApkFacts:
    """Download the APK and compute its checksums, refusing to be a way into the server's own
    network (SSRF: the guard below). Every refusal is an ApkFetchError whose message
    is meant for the admin who typed the URL."""
    limit, deadline = conf.get("QR_APK_MAX_BYTES"), conf.get("QR_APK_TIMEOUT_S")
    allowed = allowed_networks()
    try:
        data = _run(asyncio.wait_for(_download(url, limit=limit, allowed=allowed), deadline))
    except TimeoutError:
        raise ApkFetchError(f"The APK did not download within {deadline:g} second{'' if deadline == 1 else 's'}.") from None
    except httpx.HTTPError as exc:
        raise ApkFetchError(f"The APK could not be downloaded: {exc.__class__.__name__}.") from None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ApkFetchError("The URL does not serve an APK (not a zip archive).")
    signature, package = _signature_and_package(data)
    return ApkFacts(package_checksum=b64url_sha256(data), signature_checksum=signature, size=len(data), package=package)


# --- SSRF guard -------------------------------------------------------------------------------
# An admin types the URL and the server fetches it, so without these checks the QR builder was a
# way to make the server request anything it can reach: its own loopback services, the cloud's
# metadata endpoint (169.254.169.254), the private network behind it. The host is resolved here,
# every address it resolves to is checked, and the connection goes to the checked address (a
# second lookup by the HTTP client could answer differently: DNS rebinding). Redirects are
# followed by hand, each hop checked the same way, at most MAX_REDIRECTS of them. The whole
# download (lookups, connects, every hop, the body) has one deadline, and the body a size cap.
# No well-kept library does this for httpx (advocate is for requests and unmaintained since 2020).

MAX_REDIRECTS = 5
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not global, though Python 3.11's flags do not say so.
_ALSO_PRIVATE = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("fec0::/10"), ipaddress.ip_network("100.64.0.0/10"))
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="apk-dns")  # never joined by asyncio.run


def address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the server must not connect to `ip`, as a kind of address in words, or None."""
    if ip.version == 6:
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return address_refusal(ip.ipv4_mapped)
        if ip in _NAT64:  # a NAT64 gateway forwards to the embedded IPv4 address
            return address_refusal(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and address_refusal(ip.sixtofour):  # 6to4 relays to it
            return address_refusal(ip.sixtofour)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global or any(ip in network for network in _ALSO_PRIVATE):
        return "private"
    return None


def _run(coroutine):
    """asyncio.run, also from a thread that already runs an event loop (then in a thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def allowed_networks() -> list:
    """QR_APK_ALLOWED_NETWORKS: networks the operator allows despite the rules above (an APK
    server on the intranet; the tests' loopback server). Comma-separated CIDRs; empty by default."""
    raw = conf.get("QR_APK_ALLOWED_NETWORKS")
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    try:
        return [ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip()]
    except ValueError as exc:
        raise ValueError(f"QR_APK_ALLOWED_NETWORKS invalid: {exc}") from None


def _is_allowed(ip, allowed) -> bool:
    plain = ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip
    return any(plain in network for network in allowed) or address_refusal(ip) is None


async def resolve(host: str, port: int) -> list:
    """Every address `host` resolves to (numeric forms such as 2130706433 or 0x7f.1 included)."""
    loop = asyncio.get_running_loop()
    infos = await loop.run_in_executor(_RESOLVER, socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


async def _checked_address(url: httpx.URL, allowed, *, hop: int):
    """The address to connect to for `url`, or ApkFetchError saying why not."""
    if url.scheme not in ("http", "https") or not url.host:
        raise ApkFetchError("The APK URL must be an http(s) address." if hop == 0 else "The APK URL redirects to a non-HTTP(S) address.")
    subject = f"The APK URL's host {url.host}" if hop == 0 else f"The APK URL redirects to {url.host}, which"
    try:
        addresses = await resolve(url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80))
    except (OSError, UnicodeError):
        raise ApkFetchError(f"{subject} could not be found.") from None
    for ip in addresses:
        if not _is_allowed(ip, allowed):
            raise ApkFetchError(
                f"{subject} is at {ip}, a {address_refusal(ip)} address: the server only downloads APKs from public "
                "addresses (an operator can allow a network with QR_APK_ALLOWED_NETWORKS)."
            )
    return addresses[0]


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n / 2**10:g} KiB" if n >= 2**10 else f"{n} bytes"


def _url(value, message: str) -> httpx.URL:
    try:
        return httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ApkFetchError(message) from None


async def _download(url: str, *, limit: int, allowed) -> bytes:
    too_large = ApkFetchError(f"The APK is larger than {_size(limit)}.")
    # trust_env=False: an HTTP(S)_PROXY would make the connection (and the lookup) elsewhere.
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=None) as client:
        target = _url(url, "The APK URL is not a valid address.")
        for hop in range(MAX_REDIRECTS + 1):
            address = await _checked_address(target, allowed, hop=hop)
            request = client.build_request(
                "GET",
                target.copy_with(host=str(address)),
                headers={"Host": target.netloc.decode("ascii"), "Accept-Encoding": "identity"},
                # TLS is still checked against the name typed, not the address connected to.
                extensions={"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {},
            )
            response = await client.send(request, stream=True)
            try:
                if response.is_redirect:
                    target = _url(target.join(response.headers["location"]), "The APK URL redirects to an invalid address.")
                    continue
                if response.status_code != 200:
                    raise ApkFetchError(f"The APK URL answered HTTP {response.status_code}.")
                if int(response.headers.get("content-length") or 0) > limit:
                    raise too_large
                buffer = io.BytesIO()
                async for chunk in response.aiter_raw():
                    buffer.write(chunk)
                    if buffer.tell() > limit:
                        raise too_large
                return buffer.getvalue()
            finally:
                await response.aclose()
    raise ApkFetchError(f"The APK URL redirects more than {MAX_REDIRECTS} times.")


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
    kiosk_package: str = ""  # the admin extra the agent reads at provisioning (AgentSettings)


def admin_extras(spec: QrSpec) -> dict:
    """The bundle the agent receives at provisioning: exactly the keys its AgentSettings reads
    (server_url, enroll_key, kiosk_package). A policy is not chosen here: devices get the policy
    of the group their enrollment key pins, which the server assigns at enrollment."""
    extras = {"server_url": spec.server_url, "enroll_key": spec.enroll_key}
    if spec.kiosk_package:
        extras["kiosk_package"] = spec.kiosk_package
    return extras


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
    payload[EXTRA + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"] = admin_extras(spec)
    return payload


def qr_text(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def qr_images(payload: dict) -> tuple[str, str]:
    """(inline SVG markup, PNG data URI) of the QR code."""
    qr = segno.make(qr_text(payload), error="m", micro=False, encoding="utf-8")
    # omitsize: a viewBox instead of a fixed width and height, so CSS scales the code into its box
    # (a fixed-size SVG drawn in a smaller box was cut, showing one finder pattern of three).
    svg = qr.svg_inline(scale=4, border=2, dark="#111827", omitsize=True)
    png = qr.png_data_uri(scale=6, border=3)
    return svg, png


def qr_png_bytes(payload: dict) -> bytes:
    out = io.BytesIO()
    segno.make(qr_text(payload), error="m", micro=False, encoding="utf-8").save(out, kind="png", scale=6, border=3)
    return out.getvalue()
