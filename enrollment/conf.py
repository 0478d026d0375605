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
    "AGENT_ENROLL_ACTION": "dev.mdm.agent.action.ENROLL",
    "AGENT_APK_URL": "",
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
