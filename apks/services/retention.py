"""Retention of releases: the newest APK_KEEP_RELEASES per package and channel are kept, and
never a release an install_apk still waits for (a delivery not final), nor one a policy's current
version requires (its devices download it), nor one a live rollout
deploys or would roll back to, nor the agent release. The rest go, row and stored file (beat:
apks.tasks.purge_releases, hourly); a finished rollout of a purged release goes with it (its
history stays in the audit log)."""

import logging

from django.conf import settings
from django.db import transaction

from apks.downloads import releases_with_open_installs
from apks.models import Release, Rollout
from commands.policies import services as policy_services
from mdm import audit

logger = logging.getLogger(__name__)


def protected_releases() -> set[str]:
    live = Rollout.objects.filter(state__in=Rollout.LIVE_STATES)
    in_rollouts = {str(pk) for pair in live.values_list("release_id", "previous_release_id") for pk in pair if pk}
    return releases_with_open_installs() | in_rollouts | policy_services.required_release_ids()


def purge_candidates(*, keep: int) -> list[Release]:
    protected = protected_releases()
    out = []
    pairs = Release.objects.order_by().values_list("package", "channel").distinct()
    for package, channel in pairs:
        older = Release.objects.filter(package=package, channel=channel).order_by("-version_code")[keep:]
        out.extend(r for r in older if not r.agent and str(r.pk) not in protected)
    return out


def purge_old_releases(*, keep: int | None = None) -> int:
    keep = settings.APK_KEEP_RELEASES if keep is None else keep
    deleted = 0
    for release in purge_candidates(keep=keep):
        deleted += delete_release(actor=None, release=release, reason="retention")
    return deleted


def delete_release(*, actor, release: Release, reason: str, ip: str | None = None) -> int:
    """Delete the row (checked again under its lock: an install_apk issued meanwhile keeps it),
    then, once committed, its stored file. A file that cannot be deleted is logged, never
    brought back as a row."""
    with transaction.atomic():
        locked = Release.objects.select_for_update().filter(pk=release.pk).first()
        if locked is None or locked.agent or str(locked.pk) in protected_releases():
            return 0
        from django.db.models import Q

        Rollout.objects.filter(Q(release=locked) | Q(previous_release=locked)).delete()
        storage, name = locked.file.storage, locked.file.name
        locked.delete()
        audit.record(actor=actor, action="apk.delete", target=("release", str(release.pk)),
                     data={"package": locked.package, "version_code": locked.version_code, "channel": locked.channel,
                           "reason": reason}, ip=ip)
        transaction.on_commit(lambda: _delete_file(storage, name))
    return 1


def _delete_file(storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception:  # the row is gone: the file is an orphan to clean by hand, not a reason to fail
        logger.exception("release file not deleted", extra={"file": name})
