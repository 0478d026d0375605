"""APK releases: created from a parsed file (apks.parsing), checked against the package's
earlier releases, stored through Django's default storage (apks.storage)."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from apks.models import Release
from apks.parsing import ApkInfo, Refused, file_sha256, parse_apk
from mdm import audit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Uploader:
    """Who uploads, as services record it: `actor` for the audit (a user or "key:<name>"),
    `user` for Release.uploaded_by (None for an API key), how (`via`), and whether they may
    confirm a signer change (admins only)."""

    actor: object
    user: object | None
    via: str
    is_admin: bool = False

    @property
    def label(self) -> str:
        return audit.actor_label(self.actor)


def storage_name(info: ApkInfo, sha256: str) -> str:
    return f"apks/{info.package}/{info.version_code}-{sha256[:16]}.apk"


def check_release(*, info: ApkInfo, channel: str, allow_signer_change: bool = False) -> None:
    """The refusals that depend on what is stored already (Refused, with the code the uploader
    sees): a debuggable build on the stable channel, a version code that exists, and a signer
    other than the package's earlier releases' (Android would refuse the update on every
    device) unless an admin confirmed the change."""
    if channel not in settings.APK_CHANNELS:
        raise Refused("invalid_channel", f"Unknown channel {channel!r}: one of {', '.join(settings.APK_CHANNELS)}.")
    if info.debuggable and channel == "stable":
        raise Refused("debuggable_on_stable", "A debuggable build cannot go on the stable channel: upload it to another channel, or upload a release build.")
    if Release.objects.filter(package=info.package, version_code=info.version_code).exists():
        raise Refused(
            "version_exists",
            f"{info.package} version code {info.version_code} is uploaded already: raise android:versionCode for a new build.",
        )
    earlier = set(Release.objects.filter(package=info.package).values_list("signer_sha256", flat=True))
    if earlier and info.signer_sha256 not in earlier and not allow_signer_change:
        raise Refused(
            "signer_changed",
            f"This APK is signed by another certificate (SHA-256 {info.signer_sha256}) than {info.package}'s earlier releases: "
            "devices refuse to update an app whose signer changed. An admin can confirm the change if it is meant.",
        )


def create_release(
    *,
    path,
    uploader: Uploader,
    channel: str = "stable",
    notes: str = "",
    filename: str = "",
    allow_signer_change: bool = False,
    signer_change_confirmed_by=None,
    ip: str | None = None,
    now=None,
) -> Release:
    """Parse the file at `path`, check it, store it and create the release; or raise Refused.
    The file is read, never moved or deleted (the caller owns it). A signer change goes through
    only when an admin confirmed it: `allow_signer_change` by an admin uploader, or
    `signer_change_confirmed_by` (the admin who confirmed someone else's upload); it is audited."""
    info = parse_apk(path)
    confirmer = signer_change_confirmed_by or (uploader.actor if allow_signer_change and uploader.is_admin else None)
    allow = confirmer is not None
    check_release(info=info, channel=channel, allow_signer_change=allow)
    sha256, size = file_sha256(path)
    storage = Release._meta.get_field("file").storage
    with open(path, "rb") as handle:
        # Stored before the row: a row never points at a missing file. If the row then loses a
        # race (the same version uploaded twice at once), the stored copy is removed again.
        name = storage.save(storage_name(info, sha256), File(handle))
    try:
        return _insert(info=info, name=name, sha256=sha256, size=size, channel=channel, notes=notes, filename=filename,
                       uploader=uploader, confirmer=confirmer, ip=ip, now=now or timezone.now())
    except BaseException:
        storage.delete(name)
        raise


@transaction.atomic
def _insert(*, info: ApkInfo, name: str, sha256: str, size: int, channel: str, notes: str, filename: str,
            uploader: Uploader, confirmer, ip, now) -> Release:
    # Checked again inside the transaction that inserts: two uploads of one package at once.
    earlier_signers = set(Release.objects.select_for_update().filter(package=info.package).values_list("signer_sha256", flat=True))
    changed = bool(earlier_signers) and info.signer_sha256 not in earlier_signers
    if changed and confirmer is None:
        check_release(info=info, channel=channel)
    release = Release(
        package=info.package,
        version_code=info.version_code,
        version_name=info.version_name,
        label=info.label,
        min_sdk=info.min_sdk,
        target_sdk=info.target_sdk,
        abis=info.abis,
        size=size,
        sha256=sha256,
        signer_sha256=info.signer_sha256,
        signing_schemes=info.signing_schemes,
        debuggable=info.debuggable,
        channel=channel,
        notes=notes,
        filename=filename[:255],
        uploaded_by=uploader.user,
        uploaded_by_label=uploader.label,
        uploaded_via=uploader.via,
        signer_change_confirmed_by=audit.actor_label(confirmer) if changed else "",
        created_at=now,
    )
    release.file.name = name
    try:
        with transaction.atomic():
            release.save(force_insert=True)
    except IntegrityError:
        raise Refused("version_exists", f"{info.package} version code {info.version_code} is uploaded already.") from None
    audit.record(
        actor=uploader.actor,
        action="apk.upload",
        target=("release", str(release.id)),
        data={"package": release.package, "version_code": release.version_code, "version_name": release.version_name,
              "sha256": sha256, "signer_sha256": release.signer_sha256, "channel": channel, "via": uploader.via},
        ip=ip,
    )
    if release.signer_change_confirmed_by:
        audit.record(
            actor=confirmer,
            action="apk.signer_change",
            target=("release", str(release.id)),
            data={"package": release.package, "version_code": release.version_code,
                  "from": sorted(earlier_signers), "to": release.signer_sha256},
            ip=ip,
        )
    return release


@transaction.atomic
def mark_agent_release(*, actor, release: Release, ip: str | None = None) -> Release:
    """The release the QR builder and the adb one-liners offer as the agent (one at a time)."""
    Release.objects.filter(agent=True).exclude(pk=release.pk).update(agent=False)
    updated = Release.objects.filter(pk=release.pk, agent=False).update(agent=True)
    if updated:
        audit.record(actor=actor, action="apk.mark_agent", target=("release", str(release.pk)),
                     data={"package": release.package, "version_code": release.version_code}, ip=ip)
    release.agent = True
    return release


def agent_release() -> Release | None:
    return Release.objects.filter(agent=True).first()
