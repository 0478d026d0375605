"""The adb provisioning scripts (bash and PowerShell) behind the console's one-liners: what they
run on the device is in templates/enrollment/provision.{sh,ps1} and docs/enrollment.md. Pure
functions; the values they embed are validated here and quoted twice, once for the shell that runs
the script and once for the device's shell, which `adb shell` hands its arguments to joined by
spaces."""

import re
import shlex
from dataclasses import dataclass, field

from django.template.loader import render_to_string
from django.urls import reverse

from enrollment import conf, provisioning

# Runtime permissions the agent's manifest requests (`pm grant` refuses any other). `adb install
# -g` grants them already; the scripts grant them again so that a second run repairs a device
# where someone revoked one. POST_NOTIFICATIONS exists from Android 13: refused before, harmlessly.
AGENT_PERMISSIONS = (
    "android.permission.READ_PHONE_STATE",
    "android.permission.ACCESS_FINE_LOCATION",
    "android.permission.POST_NOTIFICATIONS",
)
# App-ops adb may set for it: usage access, which the agent needs for the foreground app and the
# kiosk relaunch (PACKAGE_USAGE_STATS is an app-op permission, not a runtime one).
AGENT_APPOPS = ("GET_USAGE_STATS",)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# What the scripts embed and the device's shell receives: no query strings or shell syntax, so that
# quoting stays simple enough for Windows PowerShell's native-argument passing too.
SERVER_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")
ENROLL_KEY_RE = re.compile(r"^[A-Za-z0-9_.~-]{1,200}$")


@dataclass
class ScriptSpec:
    server_url: str
    enroll_key: str
    apk_url: str
    packages: list[str] = field(default_factory=list)  # bloatware to remove for user 0
    settings: list[dict] = field(default_factory=list)  # [{"namespace", "key", "value"}]
    apk_sha256: str = ""  # lowercase hex; empty: no checksum is known and the script refuses to install
    kiosk_package: str = ""  # the agent's kiosk_package extra (what it reads at configuration)
    wait_s: int = 180
    poll_s: int = 5


def expected_sha256(apk_url: str, given: str = "") -> tuple[str, str | None]:
    """(the SHA-256 the script checks the APK at `apk_url` against, or "", a refusal or None).
    The marked agent release's, else the one `given` (the console computed it), else the
    published one configured for AGENT_APK_URL. A `given` one that contradicts the registry or
    the configuration is refused: a script must not verify against a checksum it was handed
    when the server knows better."""
    given = given.strip().lower()
    if given and not SHA256_RE.match(given):
        return "", "sha256: 64 hexadecimal digits."
    known = ""
    agent = provisioning.agent_apk()
    if agent is not None and agent.url == apk_url:
        known = agent.sha256
    elif apk_url == conf.get("AGENT_APK_URL") and conf.get("AGENT_APK_SHA256"):
        known = str(conf.get("AGENT_APK_SHA256")).strip().lower()
    if known and given and given != known:
        return "", f"sha256 does not match the published checksum of {apk_url} ({known})."
    return known or given, None


def _ps_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def validate(spec: ScriptSpec) -> None:
    """ValueError naming what is wrong, for a 400."""
    for package in spec.packages:
        if not provisioning.PACKAGE_RE.match(package):
            raise ValueError(f"invalid package name {package!r}")
    for s in spec.settings:
        if s["namespace"] not in ("system", "secure", "global") or not provisioning.SETTING_KEY_RE.match(s["key"]) or not provisioning.SETTING_VALUE_RE.match(str(s["value"])):
            raise ValueError(f"invalid setting {s!r}")
    if spec.apk_sha256 and not SHA256_RE.match(spec.apk_sha256):
        raise ValueError("invalid apk_sha256")
    if not SERVER_URL_RE.match(spec.server_url):
        raise ValueError("server_url: an http(s) URL without a query, e.g. https://mdm.example.com")
    if not ENROLL_KEY_RE.match(spec.enroll_key):
        raise ValueError("invalid enrollment key")
    if spec.kiosk_package and not provisioning.PACKAGE_RE.match(spec.kiosk_package):
        raise ValueError(f"invalid kiosk package {spec.kiosk_package!r}")


def render_script(spec: ScriptSpec, shell: str) -> str:
    """The provisioning script for `shell` ("bash" or "powershell")."""
    validate(spec)
    quote = shlex.quote if shell == "bash" else _ps_quote

    def remote(value: str) -> str:  # for the device's shell, then for the local one
        return quote(shlex.quote(value))

    server_url = spec.server_url.rstrip("/")
    context = {
        "server_url": quote(server_url),
        "server_url_remote": remote(server_url),
        "enroll_key": quote(spec.enroll_key),
        "enroll_key_remote": remote(spec.enroll_key),
        "kiosk_package": spec.kiosk_package,
        "apk_url": quote(spec.apk_url),
        "apk_sha256": spec.apk_sha256,
        "status_url": quote(server_url + reverse("enrollment:provision_status")),
        "wait_s": int(spec.wait_s),
        "poll_s": max(1, int(spec.poll_s)),
        "package": conf.get("AGENT_PACKAGE"),
        "admin_receiver": conf.get("AGENT_ADMIN_RECEIVER"),
        "configure_action": conf.get("AGENT_ENROLL_ACTION"),
        "configure_receiver": conf.get("AGENT_CONFIGURE_RECEIVER"),
        "permissions": AGENT_PERMISSIONS,
        "appops": AGENT_APPOPS,
        "packages": spec.packages,
        "settings": spec.settings,
    }
    template = "enrollment/provision.sh" if shell == "bash" else "enrollment/provision.ps1"
    return render_to_string(template, context)


def spec_for(*, key: str, apk_url: str, bloatware, tweaks, server_url: str, sha256: str = "", kiosk_package: str = "") -> ScriptSpec:
    """The spec of a script for these choices; raises ValueError when the checksum given
    contradicts the one the server knows."""
    packages = list(dict.fromkeys(p for preset in bloatware for p in preset.packages))
    settings_list = [s for preset in tweaks for s in preset.settings]
    checksum, refusal = expected_sha256(apk_url, sha256)
    if refusal:
        raise ValueError(refusal)
    return ScriptSpec(server_url=server_url.rstrip("/"), enroll_key=key, apk_url=apk_url, packages=packages, settings=settings_list,
                      apk_sha256=checksum, kiosk_package=kiosk_package, wait_s=conf.get("PROVISION_WAIT_S"),
                      poll_s=conf.get("PROVISION_POLL_S"))
