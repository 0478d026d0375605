"""Staged rollouts of a release (apks.models.Rollout): the devices chosen at creation are split
into waves (cumulative percentages of the target in a stable random order, or named groups in
order); each wave is one install_apk command.

The rule, checked by the beat task (apks.tasks.advance_rollouts) and after every admin action:
- a wave halts the rollout as soon as more than threshold_pct% of its devices failed (failed,
  rejected or expired): the rollout waits for an admin (resume past it, retry the failed, or
  roll back);
- a wave passes once its soak time is over and at least (100 - threshold_pct)% of its devices
  report the release installed; then the next wave starts at once (the last one completes the
  rollout). A wave whose devices are slow to answer simply waits: its commands expire in the end,
  and expired counts as failed.

Roll back: on a user build a Device Owner cannot downgrade (apks.services.deploy.DOWNGRADE), so a
roll back uninstalls the package and installs the previous release on the devices that got the
new one (two commands, run in seq order on each device): the app's data on them is lost, which
the admin confirms. The agent itself cannot be rolled back this way (a Device Owner app cannot
uninstall itself)."""

import hashlib
import math
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from apks.models import Release, Rollout, RolloutDevice, RolloutWave
from commands.models import Delivery, DeliveryState
from commands.params import ParamsError
from mdm import audit, text

S = DeliveryState
R = Rollout.State
W = RolloutWave.State
FAILED = (S.FAILED, S.REJECTED, S.EXPIRED)
MAX_WAVES = 10
MAX_SOAK_S = 30 * 86400
DEFAULT_SOAK_S = 3600
DEFAULT_THRESHOLD_PCT = 5.0


class RolloutStateError(Exception):
    """The action does not apply to the rollout's state (409)."""


# -- the plan -----------------------------------------------------------------------------------
def _bad(message: str, field: str = "rollout"):
    raise ParamsError({field: [message]})


def normalize_plan(raw) -> dict:
    """{"waves": [{"percent": 10} | {"group": "lab"}, ...], "soak_s": int, "threshold_pct": float}.
    Waves may be given as bare numbers (percent) or group names."""
    if not isinstance(raw, dict):
        _bad('An object: {"waves": [1, 10, 50, 100], "soak_s": 3600, "threshold_pct": 5}.')
    unknown = sorted(set(raw) - {"waves", "soak_s", "threshold_pct"})
    if unknown:
        _bad(f"Unknown fields {unknown}; known: waves, soak_s, threshold_pct.")
    waves_raw = raw.get("waves")
    if not isinstance(waves_raw, list) or not 1 <= len(waves_raw) <= MAX_WAVES:
        _bad(f"waves: a list of 1 to {MAX_WAVES} waves.")
    waves = [_wave(w) for w in waves_raw]
    kinds = {next(iter(w)) for w in waves}
    if len(kinds) > 1:
        _bad("waves: all percentages or all group names, not both.")
    if kinds == {"percent"}:
        percents = [w["percent"] for w in waves]
        if any(b <= a for a, b in zip(percents, percents[1:])):
            _bad("waves: cumulative percentages of the target, strictly increasing (e.g. 1, 10, 50, 100).")
        if percents[-1] != 100:
            _bad("waves: the last wave must be 100 (% of the target), or some devices would never get the release.")
    else:
        names = [w["group"] for w in waves]
        if len(set(names)) != len(names):
            _bad("waves: each group once.")
    soak = raw.get("soak_s", DEFAULT_SOAK_S)
    if isinstance(soak, bool) or not isinstance(soak, int) or not 0 <= soak <= MAX_SOAK_S:
        _bad(f"soak_s: seconds each wave soaks, an integer from 0 to {MAX_SOAK_S} (30 days).")
    threshold = raw.get("threshold_pct", DEFAULT_THRESHOLD_PCT)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 100 \
            or not math.isfinite(threshold):
        _bad("threshold_pct: the failure rate (percent of a wave's devices, 0 to 100) past which the rollout halts.")
    return {"waves": waves, "soak_s": soak, "threshold_pct": float(threshold)}


def _wave(raw) -> dict:
    if isinstance(raw, dict) and len(raw) == 1 and "percent" in raw:
        raw = raw["percent"]
    elif isinstance(raw, dict) and len(raw) == 1 and "group" in raw:
        raw = raw["group"]
    if isinstance(raw, str):
        if not raw.strip() or len(raw) > 150 or text.forbidden_character(raw) is not None:
            _bad("waves: a group name (1 to 150 characters, no control characters).")
        return {"group": raw.strip()}
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or not 0 < raw <= 100:
        _bad('waves: each a percentage (0 < n <= 100), a group name, {"percent": n} or {"group": "name"}.')
    return {"percent": raw}


def wave_label(wave: dict) -> str:
    return f"{wave['percent']:g}%" if "percent" in wave else f"group {wave['group']}"


def split_waves(plan: dict, device_ids: list, *, release: Release) -> list[tuple[str, list]]:
    """[(label, device ids)] per wave. Percentages cut a stable random order (a hash of the
    release and the device), so a dry run and the deployment agree and each release canaries on
    different devices. Group waves take the devices of each group; the others are left out."""
    if "percent" in plan["waves"][0]:
        salt = str(release.pk).encode()
        ordered = sorted(device_ids, key=lambda d: hashlib.sha256(salt + str(d).encode()).digest())
        out, taken = [], 0
        for wave in plan["waves"]:
            upto = math.ceil(len(ordered) * wave["percent"] / 100)
            out.append((wave_label(wave), ordered[taken:upto]))
            taken = max(taken, upto)
        return out
    from devices.models import Device, DeviceGroup

    names = [w["group"] for w in plan["waves"]]
    missing = sorted(set(names) - set(DeviceGroup.objects.filter(name__in=names).values_list("name", flat=True)))
    if missing:
        _bad(f"waves: no group named {', '.join(missing)}.")
    group_of = dict(Device.objects.filter(id__in=device_ids, group__name__in=names).values_list("id", "group__name"))
    return [(wave_label(w), [d for d in device_ids if group_of.get(d) == w["group"]]) for w in plan["waves"]]


def previous_release(release: Release) -> Release | None:
    """What a roll back installs: the newest earlier version of the package by the same signer."""
    return (Release.objects.filter(package=release.package, signer_sha256=release.signer_sha256,
                                   version_code__lt=release.version_code).order_by("-version_code").first())


# -- creation and waves -------------------------------------------------------------------------
def create_rollout(*, actor, release: Release, target: dict, versions: list, sdk_check: bool, plan: dict,
                   waves: list, expires_in_s=None, ip=None, now: datetime | None = None) -> Rollout:
    """Called by apks.services.deploy inside its transaction; starts the first wave."""
    now = now or timezone.now()
    rollout = Rollout.objects.create(
        release=release, previous_release=previous_release(release), target=target, versions=versions,
        sdk_check=sdk_check, waves_spec=plan["waves"], soak_s=plan["soak_s"], threshold_pct=plan["threshold_pct"],
        expires_in_s=expires_in_s, created_by=actor if getattr(actor, "pk", None) else None,
        created_by_label=audit.actor_label(actor), created_at=now, updated_at=now)
    RolloutWave.objects.bulk_create([RolloutWave(rollout=rollout, index=i, label=label) for i, (label, _) in enumerate(waves)])
    RolloutDevice.objects.bulk_create(
        [RolloutDevice(rollout=rollout, device_id=d, wave=i) for i, (_, ids) in enumerate(waves) for d in ids], batch_size=2000)
    audit.record(actor=actor, action="rollout.create", target=("rollout", str(rollout.pk)),
                 data={"release": str(release.pk), "waves": [[label, len(ids)] for label, ids in waves],
                       "soak_s": rollout.soak_s, "threshold_pct": rollout.threshold_pct}, ip=ip)
    _evaluate(rollout, now)
    return rollout


def _start_wave(rollout: Rollout, wave: RolloutWave, now) -> None:
    """Issue the wave's install_apk to its devices that still need the release (checked again
    now: a device may have got it meanwhile, or been deleted)."""
    from apks.services.deploy import select_devices
    from commands.services import issue_command

    chosen = list(RolloutDevice.objects.filter(rollout=rollout, wave=wave.index, delivery__isnull=True, skipped="")
                  .values_list("device_id", flat=True))
    keep = select_devices(release=rollout.release, target_spec={}, versions=rollout.versions, sdk_check=rollout.sdk_check,
                          among=chosen).device_ids if chosen else []
    gone = set(chosen) - set(keep)
    if gone:
        RolloutDevice.objects.filter(rollout=rollout, device_id__in=gone).update(skipped="not_needed_at_start")
    wave.state, wave.started_at = W.RUNNING, now
    wave.save(update_fields=["state", "started_at"])
    if keep:
        command = issue_command(actor=rollout.created_by or f"rollout:{rollout.pk}", type="install_apk",
                                params={"apk_id": str(rollout.release_id)},
                                target={"device_ids": [str(d) for d in keep]}, expires_in_s=rollout.expires_in_s, now=now).command
        _attach(rollout, wave, command, keep)
    audit.record(actor=None, action="rollout.wave_start", target=("rollout", str(rollout.pk)),
                 data={"wave": wave.number, "label": wave.label, "devices": len(keep), "skipped": len(gone)})


def _attach(rollout: Rollout, wave: RolloutWave, command, device_ids) -> None:
    wave.commands.add(command)
    RolloutDevice.objects.filter(rollout=rollout, device_id__in=device_ids).update(
        delivery=Subquery(Delivery.objects.filter(command=command, device_id=OuterRef("device_id")).values("id")[:1]))


def wave_stats(rollout: Rollout, index: int) -> dict:
    rows = (RolloutDevice.objects.filter(rollout=rollout, wave=index).values_list("delivery__state", "skipped")
            .annotate(n=Count("id")).order_by())
    stats = {"devices": 0, "succeeded": 0, "failed": 0, "pending": 0, "cancelled": 0, "skipped": 0}
    for state, skipped, n in rows:
        if skipped or state is None:
            stats["skipped" if skipped else "pending"] += n
            continue
        stats["devices"] += n
        key = "succeeded" if state == S.SUCCEEDED else "failed" if state in FAILED else \
            "cancelled" if state == S.CANCELLED else "pending"
        stats[key] += n
    return stats


def _evaluate(rollout: Rollout, now) -> None:
    """One step of the rule (module docstring); the caller holds the rollout's row lock."""
    while rollout.state == R.RUNNING:
        wave = rollout.waves.get(index=rollout.current_wave)
        if wave.state == W.PENDING:
            _start_wave(rollout, wave, now)
            _save(rollout, now, reason="")
        stats = wave_stats(rollout, wave.index)
        size = stats["devices"]
        limit = rollout.threshold_pct / 100 * size
        if size and stats["failed"] > limit:
            wave.state, wave.finished_at = W.HALTED, now
            wave.save(update_fields=["state", "finished_at"])
            reason = (f"Wave {wave.number} ({wave.label}): {stats['failed']} of {size} installs failed "
                      f"({100 * stats['failed'] / size:.1f}% > {rollout.threshold_pct:g}%).")
            _save(rollout, now, state=R.HALTED, reason=reason)
            audit.record(actor=None, action="rollout.halt", target=("rollout", str(rollout.pk)),
                         data={"wave": wave.number, **stats, "reason": reason})
            return
        if not size and not stats["pending"]:  # every device of the wave had the release by its start
            _finish_wave(rollout, wave, W.PASSED, now, stats)
            continue
        soaked = wave.started_at is not None and (now - wave.started_at).total_seconds() >= rollout.soak_s
        enough = stats["succeeded"] >= size - limit
        if not (soaked and enough):
            waiting = (f"Wave {wave.number} ({wave.label}) soaking until "
                       f"{(wave.started_at + timedelta(seconds=rollout.soak_s)):%Y-%m-%d %H:%M:%S} UTC."
                       if not soaked else
                       f"Wave {wave.number} ({wave.label}): {stats['succeeded']} of {size} installed; waiting for "
                       f"{math.ceil(size - limit)} (or more than {rollout.threshold_pct:g}% failed halts it).")
            if waiting != rollout.reason:
                _save(rollout, now, reason=waiting)
            return
        _finish_wave(rollout, wave, W.PASSED, now, stats)


def _finish_wave(rollout: Rollout, wave: RolloutWave, state: str, now, stats: dict) -> None:
    wave.state, wave.finished_at = state, now
    wave.save(update_fields=["state", "finished_at"])
    audit.record(actor=None, action="rollout.wave_done", target=("rollout", str(rollout.pk)),
                 data={"wave": wave.number, "state": state, **stats})
    if wave.index + 1 >= rollout.waves.count():
        rollout.finished_at = now
        _save(rollout, now, state=R.COMPLETED, reason="")
        audit.record(actor=None, action="rollout.complete", target=("rollout", str(rollout.pk)), data={})
    else:
        rollout.current_wave = wave.index + 1
        _save(rollout, now)


def _save(rollout: Rollout, now, *, state: str | None = None, reason: str | None = None) -> None:
    from apks import live

    if state is not None:
        rollout.state = state
    if reason is not None:
        rollout.reason = reason
    rollout.updated_at = now
    rollout.save(update_fields=["state", "reason", "current_wave", "updated_at", "finished_at"])
    live.rollout_changed_on_commit(rollout.pk)


def _locked(rollout_id) -> Rollout:
    return Rollout.objects.select_for_update().select_related("release").get(pk=rollout_id)


def advance_rollout(*, rollout_id, now: datetime | None = None) -> str:
    """The beat's step for one rollout: start, halt, pass or complete, as the rule says."""
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update(skip_locked=True).select_related("release").filter(pk=rollout_id).first()
        if rollout is None:
            return "busy"
        _evaluate(rollout, now or timezone.now())
        return rollout.state


def advance_rollouts(*, now: datetime | None = None) -> dict:
    from commands.services import flush_results

    flush_results()  # reports queued in Redis land before they are counted (commands.results)
    out = {}
    for rollout_id in Rollout.objects.filter(state=R.RUNNING).values_list("id", flat=True):
        out[str(rollout_id)] = advance_rollout(rollout_id=rollout_id, now=now)
    return out


# -- admin actions ------------------------------------------------------------------------------
def _act(rollout_id, action: str, allowed: tuple, actor, ip, data=None):
    rollout = _locked(rollout_id)
    if rollout.state not in allowed:
        raise RolloutStateError(f"A {rollout.state.replace('_', ' ')} rollout cannot be {action}; "
                                f"only a {' or '.join(s.replace('_', ' ') for s in allowed)} one.")
    audit.record(actor=actor, action=f"rollout.{action.replace(' ', '_')}", target=("rollout", str(rollout.pk)),
                 data={"wave": rollout.current_wave + 1, **(data or {})}, ip=ip)
    return rollout


@transaction.atomic
def pause_rollout(*, actor, rollout_id, ip=None, now=None) -> Rollout:
    rollout = _act(rollout_id, "paused", (R.RUNNING,), actor, ip)
    _save(rollout, now or timezone.now(), state=R.PAUSED, reason=f"Paused by {audit.actor_label(actor)}.")
    return rollout


@transaction.atomic
def resume_rollout(*, actor, rollout_id, ip=None, now=None) -> Rollout:
    """Paused: go on. Halted: the admin accepts the halted wave as it is and the next one starts."""
    now = now or timezone.now()
    rollout = _act(rollout_id, "resumed", (R.PAUSED, R.HALTED), actor, ip)
    if rollout.state == R.HALTED:
        wave = rollout.waves.get(index=rollout.current_wave)
        _finish_wave(rollout, wave, W.ACCEPTED, now, wave_stats(rollout, wave.index))
        if rollout.state == R.COMPLETED:
            return rollout
    _save(rollout, now, state=R.RUNNING, reason="")
    _evaluate(rollout, now)
    return rollout


def retry_failed(*, actor, rollout_id, ip=None, now=None) -> Rollout:
    from commands.services import flush_results

    flush_results()
    with transaction.atomic():
        return _retry_failed(actor=actor, rollout_id=rollout_id, ip=ip, now=now or timezone.now())


def _retry_failed(*, actor, rollout_id, ip, now) -> Rollout:
    """The current wave's failed devices get the install again (a new command); a halted
    rollout runs again and is judged on the new results."""
    from commands.services import issue_command

    rollout = _locked(rollout_id)
    failed = list(RolloutDevice.objects.filter(rollout=rollout, wave=rollout.current_wave, delivery__state__in=FAILED)
                  .values_list("device_id", flat=True))
    rollout = _act(rollout_id, "retried", (R.RUNNING, R.PAUSED, R.HALTED), actor, ip, {"devices": len(failed)})
    if not failed:
        raise RolloutStateError("The current wave has no failed device to retry.")
    wave = rollout.waves.get(index=rollout.current_wave)
    command = issue_command(actor=actor, type="install_apk", params={"apk_id": str(rollout.release_id)},
                            target={"device_ids": [str(d) for d in failed]}, expires_in_s=rollout.expires_in_s, ip=ip, now=now).command
    _attach(rollout, wave, command, failed)
    if rollout.state == R.HALTED:
        wave.state, wave.finished_at = W.RUNNING, None
        wave.save(update_fields=["state", "finished_at"])
        _save(rollout, now, state=R.RUNNING, reason="")
    else:
        _save(rollout, now)
    return rollout


def rollback_rollout(*, actor, rollout_id, confirm_data_loss: bool, ip=None, now=None) -> Rollout:
    from commands.services import flush_results

    flush_results()
    with transaction.atomic():
        return _rollback(actor=actor, rollout_id=rollout_id, confirm=confirm_data_loss, ip=ip, now=now or timezone.now())


def _rollback(*, actor, rollout_id, confirm: bool, ip, now) -> Rollout:
    from commands.models import Command
    from commands.services import cancel_command, issue_command
    from enrollment import conf

    rollout = _locked(rollout_id)
    previous = rollout.previous_release
    if rollout.state == R.ROLLED_BACK:
        raise RolloutStateError("This rollout was rolled back already.")
    if previous is None:
        raise ParamsError({"rollout": [f"No earlier release of {rollout.release.package} by the same signer to roll back to."]})
    if rollout.release.package == conf.get("AGENT_PACKAGE") or rollout.release.agent:
        raise ParamsError({"rollout": ["The agent cannot be rolled back: a Device Owner app cannot uninstall itself, and "
                                       "Android refuses a downgrade. Publish the old build with a higher version code."]})
    if not confirm:
        raise ParamsError({"confirm_data_loss": [
            "Android does not let a Device Owner downgrade an app: rolling back uninstalls "
            f"{rollout.release.package} and installs version {previous.version_name} ({previous.version_code}), "
            "so the app's data on those devices is lost. Send confirm_data_loss: true to go ahead."]})
    got = [str(d) for d in RolloutDevice.objects.filter(rollout=rollout, delivery__state=S.SUCCEEDED)
           .values_list("device_id", flat=True)]
    for command in Command.objects.filter(pk__in=RolloutWave.commands.through.objects.filter(
            rolloutwave__rollout=rollout).values("command_id"), cancelled_at__isnull=True):
        cancel_command(actor=actor, command=command, ip=ip, now=now)
    audit.record(actor=actor, action="rollout.rollback", target=("rollout", str(rollout.pk)),
                 data={"to_release": str(previous.pk), "version_code": previous.version_code, "devices": len(got)}, ip=ip)
    if got:
        uninstall = issue_command(actor=actor, type="uninstall_app", params={"package": rollout.release.package},
                                  target={"device_ids": got}, expires_in_s=rollout.expires_in_s, ip=ip, now=now).command
        install = issue_command(actor=actor, type="install_apk", params={"apk_id": str(previous.pk)},
                                target={"device_ids": got}, expires_in_s=rollout.expires_in_s, ip=ip, now=now).command
        rollout.rollback_commands.add(uninstall, install)
    rollout.finished_at = now
    _save(rollout, now, state=R.ROLLED_BACK,
          reason=f"Rolled back by {audit.actor_label(actor)} to {previous.version_name} ({previous.version_code}) "
                 f"on {len(got)} device{'s' if len(got) != 1 else ''}.")
    return rollout
