"""State changes of the policy channel (docs/policies.md). Each is atomic and audited; what a
change does to devices (their resolved version on the devices side, the Redis version cache,
the `sync` push) follows from one reconciliation (commands.policies.resolve) and leaves the
process only on commit."""

from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from commands import crypto, markers, signing, targeting
from commands.models import DeviceKey
from commands.params import ParamsError
from commands.policies import cache, reports, resolve
from commands.policies import items as policy_items
from commands.policies.models import Policy, PolicyAssignment, PolicyVersion
from commands.services.keys import ensure_device_keys, live_keys
from devices import compliance, tokens
from devices.hooks import UNREAD
from devices.models import DeviceGroup
from mdm import audit, sql

STATES = ("applied", "failed", "unsupported", "pending")
_UNSET = object()


def _clean_name(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise ParamsError({"name": ["A name of 1-100 characters is required."]})
    return name


def _new_version(*, policy: Policy, cleaned: policy_items.Cleaned, actor) -> PolicyVersion:
    version = PolicyVersion.objects.create(
        policy=policy, items=cleaned.items, sources=cleaned.sources, created_by=audit.actor_label(actor),
        secret=crypto.encrypt_json(cleaned.secret) if cleaned.secret else "",
    )
    Policy.objects.filter(pk=policy.pk).update(current=version, updated_at=timezone.now())
    policy.current = version
    return version


def _announce(changed: dict) -> None:
    """The devices whose (policy, version) moved: their cached version is replaced by the new one
    after the commit (commands.policies.cache.moved_on_commit), and a change of at most
    POLICY_SYNC_PUSH_MAX devices gets a `sync` push so they fetch at once (best effort: the
    heartbeat's policy_version carries it)."""
    if not changed:
        return
    ids = sorted(changed)
    cache.moved_on_commit(changed)

    if len(ids) > sync_push_max():
        return  # a fleet-wide change: the heartbeats tell every device within one interval, spread

    def push():
        from commands.tasks import push_policy_sync  # tasks import services: imported when it runs

        push_policy_sync.delay(ids)

    transaction.on_commit(push)


def sync_push_max() -> int:
    """The largest change told by a `sync` push as well as by heartbeats. A push makes every device
    pull its commands and fetch its policy at once: three requests each, all in the same second
    for the whole change. Measured (bench/policy_fanout.py, 2,000 devices @10 s): all at once held
    heartbeats up 14 s (p99), spread over half an interval still 4.9 s; the heartbeats alone
    spread the fetches over one interval by construction (each device's beat comes at its own
    moment), which is the 2-interval goal with nothing held up. Small changes (a device, a
    group of a few hundred) keep the push: immediate, and cheap at that size."""
    return settings.POLICY_SYNC_PUSH_MAX


@transaction.atomic
def create_policy(*, actor, name, items, description: str = "", ip=None) -> Policy:
    name = _clean_name(name)
    cleaned = policy_items.clean_items(items)
    if Policy.objects.filter(name=name).exists():
        raise ParamsError({"name": ["A policy with this name exists; edit it to make a new version."]})
    try:
        with transaction.atomic():
            policy = Policy.objects.create(name=name, description=str(description or "")[:300])
    except IntegrityError:  # a concurrent create with the same name won
        raise ParamsError({"name": ["A policy with this name exists; edit it to make a new version."]}) from None
    version = _new_version(policy=policy, cleaned=cleaned, actor=actor)
    audit.record(actor=actor, action="policy.create", target=("policy", str(policy.pk)),
                 data={"name": name, "version": version.pk, "items": policy_items.masked(cleaned.items)}, ip=ip)
    return policy


def diff_summary(before: dict, after: dict) -> dict:
    """Which items a new version adds, removes or changes (names only: values may be secret)."""
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(n for n in set(before) & set(after) if before[n] != after[n]),
    }


@transaction.atomic
def update_policy(*, actor, policy: Policy, items, description=_UNSET, ip=None, reason: str = "") -> Policy:
    """A new version with these items (every device of the policy is told); the old versions stay."""
    policy = Policy.objects.select_for_update(of=("self",)).select_related("current").get(pk=policy.pk)
    cleaned = policy_items.clean_items(items)
    before = policy.current.items if policy.current else {}
    old_version = policy.version
    if description is not _UNSET:
        Policy.objects.filter(pk=policy.pk).update(description=str(description or "")[:300])
    version = _new_version(policy=policy, cleaned=cleaned, actor=actor)
    audit.record(actor=actor, action="policy.update", target=("policy", str(policy.pk)),
                 data={"name": policy.name, "from_version": old_version, "version": version.pk,
                       "diff": diff_summary(before, cleaned.items), **({"reason": reason} if reason else {})}, ip=ip)
    _announce(resolve.reconcile())
    return policy


def _assignment_target(spec: dict):
    """(what to write, the devices the target selects) for a normalized target."""
    if "group" in spec:
        group = DeviceGroup.objects.filter(name=spec["group"]).first()
        if group is None:
            raise ParamsError({"target": [f"No group named {spec['group']!r}."]})
        return ("group", group), targeting.resolve(spec)
    if "all" in spec:
        return ("fleet_default", True), targeting.resolve(spec)
    return ("devices", None), targeting.resolve(spec)


def preview_assignment(*, target) -> list:
    """The devices an assignment to `target` selects (dry run), nothing written."""
    spec = targeting.normalize(target)
    _, devices = _assignment_target(spec)
    return list(devices.order_by("pk").values_list("pk", flat=True))


@transaction.atomic
def assign_policy(*, actor, policy: Policy, target, ip=None) -> dict:
    """Assign the policy (PROTOCOL.md "Admin API essentials"): `{"group": name}` assigns it to the
    group (devices joining later get it too), `{"all": true}` makes it the fleet default, and the
    other target forms (device ids, tags, a filter) assign it to each device they select now. A
    device has at most one policy: an assignment replaces the one of the same kind it had.
    Returns {"target_count", "changed"}."""
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    spec = targeting.normalize(target)
    (kind, value), devices = _assignment_target(spec)
    device_ids = list(devices.values_list("pk", flat=True))
    if kind == "group":
        PolicyAssignment.objects.update_or_create(group=value, defaults={"policy": policy})
    elif kind == "fleet_default":
        PolicyAssignment.objects.update_or_create(fleet_default=True, defaults={"policy": policy})
    else:
        if not device_ids:
            raise ParamsError({"target": ["The target matches no device."]})
        _assign_to_devices(policy, device_ids)
    changed = resolve.reconcile()
    audit.record(actor=actor, action="policy.assign", target=("policy", str(policy.pk)),
                 data={"name": policy.name, "target": spec, "target_count": len(device_ids), "changed": len(changed)}, ip=ip)
    _announce(changed)
    return {"target_count": len(device_ids), "changed": len(changed)}


# A device's assignment, set: a new row, or another policy's row taken over (as new), or kept as
# it is when it already names this policy. One statement whatever the number of devices.
_ASSIGN_DEVICES = (
    "INSERT INTO {table} AS a (policy_id, device_id, group_id, fleet_default, created_at) "
    "SELECT %s, d, NULL, false, %s FROM unnest(%s::uuid[]) AS d "
    "ON CONFLICT (device_id) DO UPDATE SET policy_id = EXCLUDED.policy_id, created_at = EXCLUDED.created_at "
    "WHERE a.policy_id <> EXCLUDED.policy_id"
)


def _assign_to_devices(policy: Policy, device_ids: list) -> None:
    """Assign `policy` to each device. A fleet-wide assignment runs inside the admin's request, in
    a web process that serves heartbeats on its other threads: on PostgreSQL one set-based
    statement, not 2,000 model instances (docs/policies.md, the fan-out benchmark)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_ASSIGN_DEVICES.format(table=sql.table(PolicyAssignment)),
                           [policy.pk, timezone.now(), list(device_ids)])
        return
    PolicyAssignment.objects.filter(device_id__in=device_ids).exclude(policy=policy).delete()
    have = set(PolicyAssignment.objects.filter(device_id__in=device_ids).values_list("device_id", flat=True))
    PolicyAssignment.objects.bulk_create(
        [PolicyAssignment(policy=policy, device_id=d) for d in device_ids if d not in have], batch_size=2000)


@transaction.atomic
def unassign_policy(*, actor, policy: Policy, target, ip=None) -> dict:
    """Undo assign_policy for a target: this policy's assignment to the group, its fleet-default
    role, or its assignments to the devices the target selects; those devices fall back to the
    next rule (their group's policy, the fleet default, none). Returns {"target_count", "changed"}."""
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    spec = targeting.normalize(target)
    (kind, value), devices = _assignment_target(spec)
    mine = PolicyAssignment.objects.filter(policy=policy)
    if kind == "group":
        removed = mine.filter(group=value).delete()[0]
    elif kind == "fleet_default":
        removed = mine.filter(fleet_default=True).delete()[0]
    else:
        removed = mine.filter(device_id__in=devices.values("pk")).delete()[0]
    changed = resolve.reconcile() if removed else {}
    audit.record(actor=actor, action="policy.unassign", target=("policy", str(policy.pk)),
                 data={"name": policy.name, "target": spec, "removed": removed, "changed": len(changed)}, ip=ip)
    _announce(changed)
    return {"target_count": removed, "changed": len(changed)}


@transaction.atomic
def republish_policies(*, actor, policies, reason: str, ip=None) -> list[Policy]:
    """A new version of each policy from its current items, taken again from their sources (a
    Wi-Fi config or the console's allowlist was edited): what the devices hold follows the edit."""
    done = []
    for policy in policies:
        current = PolicyVersion.objects.filter(pk=policy.current_id).first()
        if current is None:
            continue
        raw = dict(current.items)
        raw.update({name: source for name, source in current.sources.items()})
        if "apps" in raw:
            raw["apps"] = {"required": [{"apk_id": r["apk_id"]} for r in raw["apps"]["required"]],
                           "blocked": raw["apps"]["blocked"]}
        try:
            done.append(update_policy(actor=actor, policy=policy, items=raw, ip=ip, reason=reason))
        except ParamsError as exc:  # the source no longer validates (a rule made broader): keep the version
            audit.record(actor=actor, action="policy.republish_failed", target=("policy", str(policy.pk)),
                         data={"name": policy.name, "reason": reason, "error": exc.detail}, ip=ip)
    return done


def policies_using_wifi(config_id) -> list[Policy]:
    config_id = str(config_id)
    return [p for p in Policy.objects.select_related("current")
            if p.current and any(e["id"] == config_id for e in p.current.items.get("wifi", []))]


def policies_using_console_allowlist() -> list[Policy]:
    return [p for p in Policy.objects.select_related("current")
            if p.current and p.current.sources.get("shell_allowlist") == "console"]


# --- the device's side --------------------------------------------------------------------------


def devices_regrouped(*, device_ids) -> None:
    """devices.hooks.devices_regrouped, inside the transaction that moved them."""
    _announce(resolve.reconcile(device_ids))


def on_enrolled(*, device_id) -> None:
    """Inside the enrollment transaction: the new (or re-enrolled) device's policy, resolved.
    Without the reconciliation lock (a registration storm must not queue on it): a policy change
    committing at the same moment may leave this device's devices-side row stale until the next
    change; what the device itself is served is always resolved afresh (current_for_device)."""
    if not PolicyAssignment.objects.exists() and not compliance.resolved_states([device_id]):
        return  # the common fleet without policies: two cheap queries
    resolve.reconcile([device_id], lock=False)
    cache.forget_on_commit([device_id])  # a re-enrolled device's cache may predate this


def heartbeat_policy_version(*, device_id, cached=UNREAD) -> int:
    """devices.hooks.policy_version, on every heartbeat: the version the heartbeat's own Redis
    call read (no query), else one query and the cache written again (commands.policies.cache)."""
    raw = cache.read(device_id) if cached is UNREAD else cached
    version = cache.parse(raw)
    if version is not None:
        return version
    token = cache.begin_check(device_id) if raw is None else None  # raw "chk:": another check is on it
    _, version = resolve.current_for_device(device_id)
    cache.finish(device_id, token, version)
    return version


def _signing_key(device_id, now: datetime, read: tuple | None = None) -> tuple[str, bytes]:
    """(kid, key) of the device's current key: from the keyset its heartbeats cached in Redis
    (commands.markers), no query, when the device is clean; else from the database. `read`: the
    marker and keyset values already read (the last two of fetch_prefixes())."""
    cached = markers.cached_signing_key(device_id) if read is None else markers.signing_key_of(*read)
    if cached is not None:
        return cached
    keys = live_keys(device_id)
    current = next((k for k in keys if k.state == DeviceKey.State.CURRENT), None)
    if current is None:
        current = next(k for k in ensure_device_keys(device_id=device_id, now=now) if k.state == DeviceKey.State.CURRENT)
    return current.kid, current.key


# The item names of each version this process has rendered (a version never changes): what a
# report is judged against before its device is authenticated (_queued_report), which must not
# make an unauthenticated request read PostgreSQL. Bounded: emptied when it grows past this.
_NAMES: dict[int, frozenset | None] = {}
NAMES_KEPT = 1024
_UNKNOWN = object()


@lru_cache(maxsize=64)
def _rendered(version: int) -> tuple[dict, frozenset | None]:
    """(the items as devices get them, secrets in; their names) of one policy version, or ({},
    None) for a version that does not exist. Versions never change once written, so each process
    renders (and decrypts) one once, not at every device's fetch: a policy change makes every
    device of the fleet fetch within an interval (docs/performance.md)."""
    row = PolicyVersion.objects.filter(pk=version).only("items", "secret").first()
    if row is None:
        return {}, None
    return policy_items.for_device(row.items, row.secret_values()), frozenset(row.items)


def _rendered_for_device(version: int) -> tuple[dict, frozenset | None]:
    """_rendered, for an authenticated device: its item names are remembered for _queued_report."""
    rendered = _rendered(version)
    if _NAMES.get(version, _UNKNOWN) is not rendered[1]:
        if len(_NAMES) >= NAMES_KEPT:
            _NAMES.clear()
        _NAMES[version] = rendered[1]
    return rendered


def fetch_prefixes() -> tuple[str, str, str]:
    """What the fetch reads with its token check (devices.tokens.verify_with), in one Redis call:
    the device's cached policy version, its command marker and cached keyset (the signing key)."""
    return (cache.PREFIX, *markers.signing_key_prefixes())


def device_document(*, device_id, now: datetime | None = None, read: tuple | None = None) -> dict:
    """GET /api/v1/device/policy: {"policy": "<JSON text>", "kid", "sig"}, signed like an envelope
    with the device's current key. The only place secret values leave the server. `read`: the
    values under fetch_prefixes() already read; else read here."""
    now = now or timezone.now()
    # The heartbeat's Redis cache: no query when warm.
    version = heartbeat_policy_version(device_id=device_id, cached=UNREAD if read is None else read[0])
    rendered = _rendered_for_device(version)[0] if version else {}
    payload = {"device_id": str(device_id), "version": version, "issued_at": int(now.timestamp()), "items": rendered}
    kid, key = _signing_key(device_id, now, None if read is None else read[1:])
    text = signing.encode_payload(payload)
    return {"policy": text, "kid": kid, "sig": signing.sign(key, text)}


def _all_applied(expected: frozenset | None, items: dict) -> bool:
    return expected is not None and all(items.get(name, {}).get("state") == "applied" for name in expected)


def _queued_report(*, version: int, items: dict, now: datetime) -> tuple[str | None, str]:
    """(queue key, entry) of a report in its queued form, for the device's token check to push in
    the same Redis call, or (None, "") when it cannot be queued that way: write-behind off, too
    large, or a version this process has not rendered yet (a version's items are read from
    PostgreSQL only for an authenticated device)."""
    if not reports.enabled():
        return None, ""
    expected = _NAMES.get(version, _UNKNOWN) if version else frozenset()
    if expected is _UNKNOWN:
        return None, ""
    text = reports.entry(version=version, items=items, all_applied=_all_applied(expected, items), now=now)
    return (reports.QUEUE.key(), text) if text else (None, "")


def report_policy_status(*, token: str, version: int, items: dict) -> str | None:
    """PUT /api/v1/device/policy/status (validated by the view), authenticated by the device's
    token: its device id, or None for a bad token (401). The token check queues the report in the
    same Redis call when it can (devices.tokens.verify_with); else record_policy_status after it."""
    now = timezone.now()
    push_to, entry = _queued_report(version=version, items=items, now=now)
    checked = tokens.verify_with(token, push_to=push_to, entry=entry)
    if checked.device_id is not None and not checked.pushed:
        record_policy_status(device_id=checked.device_id, version=version, items=items, now=now)
    return checked.device_id


def record_policy_status(*, device_id, version: int, items: dict, now: datetime | None = None) -> bool:
    """PUT /api/v1/device/policy/status (validated by the view). Accepted for any version; only a
    report of the device's current version, every item of it `applied`, makes it compliant (the
    devices-side row compares `applied_version` with the current one). Returns all_applied."""
    all_applied = _all_applied(_rendered_for_device(version)[1] if version else frozenset(), items)
    now = now or timezone.now()
    # Queued for the flush (commands.policies.reports) when it can be; else written now.
    if not (reports.enabled() and reports.queue(device_id=device_id, version=version, items=items,
                                                 all_applied=all_applied, now=now)):
        compliance.record_report(device_id=device_id, version=version, items=items, all_applied=all_applied, now=now)
    return all_applied


def policy_requires_release(*, device_id, apk_id) -> bool:
    """True when the device's current policy lists this APK release under apps.required (the
    download endpoint's second rule, apks.downloads.policy_requires)."""
    _, version = resolve.current_for_device(device_id)
    if not version:
        return False
    items = PolicyVersion.objects.filter(pk=version).values_list("items", flat=True).first() or {}
    return any(r.get("apk_id") == str(apk_id) for r in items.get("apps", {}).get("required", []))


def required_release_ids() -> set[str]:
    """APK release ids (str) some policy's current version requires: kept by the APK retention."""
    rows = PolicyVersion.objects.filter(pk__in=Policy.objects.values("current_id")).values_list("items", flat=True)
    return {r["apk_id"] for items in rows for r in items.get("apps", {}).get("required", [])}
