"""Reads of the APK app (docs/ARCHITECTURE.md: reusable reads, one scoping helper)."""

from apks.models import Release


def releases_for(request):
    """Every release for a signed-in user or an API key with apk:read or apk:upload; none otherwise."""
    key = getattr(request, "auth", None)
    if getattr(key, "has_scope", None) and (key.has_scope("apk:read") or key.has_scope("apk:upload")):
        return Release.objects.all()
    return Release.objects.for_user(request.user)


def grouped_by_package(releases) -> list[tuple[str, list]]:
    """[(package, [releases newest first])] in package order: the page's grouping."""
    groups: dict[str, list] = {}
    for release in releases:
        groups.setdefault(release.package, []).append(release)
    return sorted(groups.items())


def running_counts(releases) -> dict:
    """{(package, version_code): devices that report it installed}: one aggregate query for a
    whole page of releases (from the inventories devices report, devices.InstalledApp)."""
    from django.db.models import Count

    from devices.models import InstalledApp

    packages = {r.package for r in releases}
    if not packages:
        return {}
    rows = (InstalledApp.objects.filter(package__in=packages, device__deleted_at__isnull=True)
            .values_list("package", "version_code").annotate(n=Count("id")))
    return {(package, code): n for package, code, n in rows}


LIST_LIMIT = 50


def coverage(release) -> dict:
    """Which active devices run this release, an older or a newer version of its package, and
    which miss the package: counts, and the first LIST_LIMIT devices of each (by name)."""
    from devices.models import Device

    devices = Device.objects.active().select_related("status").order_by("alias", "hardware_id")
    groups = {
        "running": devices.filter(apps__package=release.package, apps__version_code=release.version_code),
        "older": devices.filter(apps__package=release.package, apps__version_code__lt=release.version_code),
        "newer": devices.filter(apps__package=release.package, apps__version_code__gt=release.version_code),
        "missing": devices.exclude(apps__package=release.package),
    }
    return {name: {"count": qs.count(), "devices": list(qs[:LIST_LIMIT])} for name, qs in groups.items()}


def rollout_with_waves(rollout_id):
    """A rollout with its release, and its waves each with `.stats` (apks.services.rollouts.wave_stats)
    and `.command_ids`; None when it does not exist."""
    from apks.models import Rollout, RolloutWave
    from apks.services.rollouts import wave_stats

    rollout = (Rollout.objects.select_related("release", "previous_release").filter(pk=rollout_id).first())
    if rollout is None:
        return None
    rollout.wave_list = list(rollout.waves.order_by("index"))
    issued = {}  # wave id -> its command ids in the order they were attached (the first, then retries)
    for wave_id, command_id in (RolloutWave.commands.through.objects.filter(rolloutwave__rollout=rollout)
                                .order_by("id").values_list("rolloutwave_id", "command_id")):
        issued.setdefault(wave_id, []).append(str(command_id))
    for wave in rollout.wave_list:
        wave.stats = wave_stats(rollout, wave.index)
        wave.command_ids = issued.get(wave.pk, [])
    rollout.rollback_command_ids = [str(pk) for pk in rollout.rollback_commands.values_list("id", flat=True)]
    current = rollout.wave_list[rollout.current_wave] if rollout.current_wave < len(rollout.wave_list) else None
    rollout.live_command_id = current.command_ids[-1] if current and current.command_ids else None
    return rollout
