"""Settings of the enrollment app. Each reads a Django setting of the same name if present (tests
override them with pytest-django's `settings`), else the environment, else the default."""

import os

from django.conf import settings

DEFAULTS = {
    # Registration queue: enrollments processed at once across all web processes, and how long a
    # request waits for a slot before it is answered 503 busy + Retry-After.
    "ENROLL_CONCURRENCY": 8,
    "ENROLL_QUEUE_WAIT_S": 2.0,
    "ENROLL_BUSY_RETRY_AFTER_S": 2,
    # Per client IP (django-ratelimit syntax). Generous on purpose: a mass provisioning of 2,000
    # devices behind one NAT must fit in a minute; keys are 256-bit (nothing to guess) and the
    # registration queue above, not this, protects the server from storms.
    "ENROLL_RATE_LIMIT": "6000/m",
    # The agent, for QR codes and the adb one-liner.
    "AGENT_PACKAGE": "dev.mdm.agent",
    "AGENT_ADMIN_RECEIVER": "dev.mdm.agent/.AdminReceiver",
    # The agent's adb configuration receiver (ConfigureReceiver in its manifest): the scripts
    # address it by component, because Android 8+ does not deliver an implicit broadcast to a
    # receiver declared in a manifest.
    "AGENT_ENROLL_ACTION": "dev.mdm.agent.CONFIGURE",
    "AGENT_CONFIGURE_RECEIVER": "dev.mdm.agent/.ConfigureReceiver",
    "AGENT_APK_URL": "",
    # The published SHA-256 (hex) of the APK at AGENT_APK_URL: the scripts verify the download
    # against it when no agent release is marked in the APK registry.
    "AGENT_APK_SHA256": "",
    # How long the scripts wait for the device to enroll and heartbeat, and how often they ask
    # (GET /enrollment/provision.status). The rate limit is per client IP: a bench of 100 devices
    # behind one NAT polling every 5 s stays under it.
    "PROVISION_WAIT_S": 180,
    "PROVISION_POLL_S": 5,
    "PROVISION_STATUS_RATE_LIMIT": "1200/m",
    # The QR builder downloads the APK to checksum it: a size cap, one deadline for the whole
    # download (redirects included), and networks allowed despite the SSRF rules (comma-separated
    # CIDRs: an intranet APK server; loopback in the tests). Public addresses only by default.
    "QR_APK_MAX_BYTES": 100 * 1024 * 1024,
    "QR_APK_TIMEOUT_S": 30.0,
    "QR_APK_ALLOWED_NETWORKS": "",
}


def get(name: str):
    if hasattr(settings, name):
        return getattr(settings, name)
    default = DEFAULTS[name]
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return type(default)(raw)
    except ValueError:
        raise ValueError(f"Environment variable {name!r} invalid: {raw!r}") from None
