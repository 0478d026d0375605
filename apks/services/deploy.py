"""Deploying a release: the command target narrowed by version filters read from the devices'
inventories, then either one install_apk command to every device left, or a staged rollout
(apks.services.rollouts). A dry run answers the same selection and writes nothing.

Version filters name which installed states get the release: "missing" (the package is not in
the device's inventory), "older" (an older version code), "same" (a reinstall). "newer" is not
offered: a Device Owner cannot downgrade an app on a user build of Android (PackageManager
allows a downgrade only for system-server sessions or debuggable builds and answers
INSTALL_FAILED_VERSION_DOWNGRADE), so the command could only fail. `sdk_check` leaves out the
devices whose SDK is below the release's min SDK (and those that never reported one)."""

from dataclasses import dataclass, field

from django.db import transaction

from apks.models import Release
from commands import targeting
from commands.params import ParamsError
from mdm import audit

VERSION_STATES = ("missing", "older", "same")
DEFAULT_VERSIONS = ["missing", "older"]
DOWNGRADE = ("A Device Owner cannot downgrade an app on a user build of Android (the package manager answers "
             "INSTALL_FAILED_VERSION_DOWNGRADE): deploy a build with a higher version code, or roll back with "
             "uninstall and reinstall (POST /api/v1/rollouts/<id>/rollback).")


def normalize_versions(raw) -> list[str]:
    if raw is None:
        return list(DEFAULT_VERSIONS)
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
        raise ParamsError({"versions": [f"A non-empty list of: {', '.join(VERSION_STATES)}."]})
    if "newer" in raw:
        raise ParamsError({"versions": [DOWNGRADE]})
    unknown = sorted(set(raw) - set(VERSION_STATES))
    if unknown:
        raise ParamsError({"versions": [f"Unknown {unknown}; known: {', '.join(VERSION_STATES)}."]})
    return [v for v in VERSION_STATES if v in raw]


@dataclass
class Selection:
    device_ids: list = field(default_factory=list)  # sorted by id
    excluded: dict = field(default_factory=dict)  # why the others were left out: {reason: count}
    matched: int = 0  # the target before the filters


def installed_state(installed_code, version_code: int) -> str:
    if installed_code is None:
        return "missing"
    if installed_code < version_code:
        return "older"
    return "same" if installed_code == version_code else "newer"


def select_devices(*, release: Release, target_spec: dict, versions: list[str], sdk_check: bool,
                   among=None) -> Selection:
    """The devices of the target (or, with `among`, of those ids that are still active) that the
    filters keep, read in two queries whatever the fleet size."""
    from devices.models import Device, InstalledApp

    devices = targeting.resolve(target_spec) if among is None else Device.objects.active().filter(id__in=among)
    rows = list(devices.order_by("id").values_list("id", "sdk_int"))
    installed = dict(InstalledApp.objects.filter(device_id__in=[r[0] for r in rows], package=release.package)
                     .values_list("device_id", "version_code"))
    selection = Selection(matched=len(rows))
    for device_id, sdk in rows:
        if device_id not in installed:
            state = "missing"
        elif installed[device_id] is None:
            state = "older"  # listed without a version code: taken as needing the release
        else:
            state = installed_state(installed[device_id], release.version_code)
        if state not in versions:
            reason = "up_to_date" if state == "same" else state
        elif sdk_check and release.min_sdk and sdk is None:
            reason = "sdk_unknown"
        elif sdk_check and release.min_sdk and sdk < release.min_sdk:
            reason = "sdk_too_low"
        else:
            selection.device_ids.append(device_id)
            continue
        selection.excluded[reason] = selection.excluded.get(reason, 0) + 1
    return selection


@dataclass
class Deployment:
    selection: Selection
    command: object = None  # the install_apk command (no rollout)
    rollout: object = None
    waves: list = field(default_factory=list)  # [(label, count)] of a rollout, dry run included


def deploy_release(*, actor, release: Release, target, versions=None, sdk_check: bool = True, rollout: dict | None = None,
                   expires_in_s: int | None = None, dry_run: bool = False, ip: str | None = None) -> Deployment:
    """Raises ParamsError (400) for a bad target, filter or rollout, or a selection of no device."""
    from apks.services import rollouts
    from commands.services import issue_command

    spec = targeting.normalize(target)
    versions = normalize_versions(versions)
    plan = rollouts.normalize_plan(rollout) if rollout is not None else None
    selection = select_devices(release=release, target_spec=spec, versions=versions, sdk_check=sdk_check)
    waves = rollouts.split_waves(plan, selection.device_ids, release=release) if plan else []
    result = Deployment(selection=selection, waves=[(label, len(ids)) for label, ids in waves])
    if dry_run:
        return result
    if not selection.device_ids:
        raise ParamsError({"target": ["No device of the target needs this release (" + describe_excluded(selection) + ")."]})
    with transaction.atomic():
        # Held until commit: retention's purge locks the row FOR UPDATE, so it waits for this
        # deployment and then sees its deliveries (or rollout), or has deleted the release first.
        if not Release.objects.select_for_update(no_key=True).filter(pk=release.pk).exists():
            raise ParamsError({"release": ["This release was deleted."]})
        audit.record(actor=actor, action="apk.deploy", target=("release", str(release.pk)),
                     data={"package": release.package, "version_code": release.version_code, "target": spec,
                           "versions": versions, "sdk_check": sdk_check, "devices": len(selection.device_ids),
                           "excluded": selection.excluded, **({"rollout": plan} if plan else {})}, ip=ip)
        if plan:
            result.rollout = rollouts.create_rollout(actor=actor, release=release, target=spec, versions=versions,
                                                     sdk_check=sdk_check, plan=plan, waves=waves,
                                                     expires_in_s=expires_in_s, ip=ip)
        else:
            result.command = issue_command(actor=actor, type="install_apk", params={"apk_id": str(release.pk)},
                                           target={"device_ids": [str(i) for i in selection.device_ids]},
                                           expires_in_s=expires_in_s, ip=ip).command
    return result


def describe_excluded(selection: Selection) -> str:
    words = {"missing": "miss the app", "older": "run an older version", "up_to_date": "run this version",
             "newer": "run a newer version", "sdk_too_low": "have an SDK below the min SDK",
             "sdk_unknown": "never reported their SDK"}
    if not selection.matched:
        return "the target matches no device"
    parts = [f"{n} {words.get(reason, reason)}" for reason, n in sorted(selection.excluded.items())]
    return f"{selection.matched} matched; left out: " + ", ".join(parts)
