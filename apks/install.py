"""install_apk's params from a release (PROTOCOL.md "Types": apk_id, package, version_code,
sha256, size). The issuer takes just an `apk_id` and gets the rest from the release; what the
caller gives besides must agree with it. Registered with commands.params at start-up."""

import uuid

from apks.models import Release

FILLED = ("package", "version_code", "sha256", "size")


def install_apk_params(params: dict, errors: dict) -> dict:
    raw = params.get("apk_id")
    release = None
    if isinstance(raw, str) and len(raw) <= 64:
        try:
            release = Release.objects.filter(pk=uuid.UUID(raw)).first()
        except ValueError:
            release = None
    if release is None:
        errors["apk_id"] = ["The id of an uploaded APK release is required (GET /api/v1/apks lists them)."]
        return {}
    cleaned = {"apk_id": str(release.id), "package": release.package, "version_code": release.version_code,
               "sha256": release.sha256, "size": release.size}
    for name in FILLED:
        given = params.get(name)
        if given not in (None, "") and (type(given) is not type(cleaned[name]) or given != cleaned[name]):
            errors[name] = [f"Does not match the release {release.id} ({cleaned[name]}); leave it out to take the release's."]
    return cleaned


def policy_app(apk_id: str) -> dict | None:
    """A required app of a policy's `apps` item (PROTOCOL.md v1.1: package, apk_id, version_code,
    sha256, size) from its release id, or None when there is no such release."""
    try:
        release = Release.objects.filter(pk=uuid.UUID(apk_id)).first()
    except (TypeError, ValueError, AttributeError):
        return None
    if release is None:
        return None
    return {"package": release.package, "apk_id": str(release.id), "version_code": release.version_code,
            "sha256": release.sha256, "size": release.size}


def policy_release_choices(limit: int = 1000) -> list[dict]:
    """The releases the console's policy editor offers for the `apps` item, newest first per package."""
    rows = Release.objects.order_by("package", "-version_code").values(
        "id", "package", "version_name", "version_code", "label", "channel")[:limit]
    return [{**row, "apk_id": str(row.pop("id"))} for row in rows]


def agent_apk_for_provisioning():
    """The marked agent release as enrollment.provisioning wants it: its public URL and the
    checksums Android's provisioning checks (URL-safe base64 of the SHA-256 of the file and of
    the signing certificate), known from the release without downloading it."""
    import base64

    from apks.views import agent_url
    from enrollment.provisioning import AgentApk, ApkFacts

    release = Release.objects.filter(agent=True).first()
    if release is None:
        return None

    def b64url(hex_digest: str) -> str:
        return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).decode().rstrip("=")

    facts = ApkFacts(package_checksum=b64url(release.sha256), signature_checksum=b64url(release.signer_sha256),
                     size=release.size, package=release.package)
    return AgentApk(url=agent_url(release), facts=facts, sha256=release.sha256,
                    label=f"{release.package} {release.version_name} ({release.version_code})")


def registry_packages():
    """The packages the registry holds, for enrollment's kiosk choices (enrollment.selectors)."""
    return Release.objects.order_by().values_list("package", flat=True).distinct()
