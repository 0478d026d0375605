"""What the console and the API change on devices, groups and tags: edits one device at a time or
in bulk (move, tag, delete), restore, and the groups and tags themselves. Every change is audited."""

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from devices import hooks, tokens
from devices.models import Device, DeviceGroup, DeviceStatus, Tag
from devices.services.sweep import schedule_status_broadcast
from mdm import audit


def _tags_from_names(names) -> list[Tag]:
    slugs = {slugify(n)[:64] for n in names if slugify(n)}
    existing = {t.name: t for t in Tag.objects.filter(name__in=slugs)}
    for slug in slugs - existing.keys():
        existing[slug], _ = Tag.objects.get_or_create(name=slug)
    return sorted(existing.values(), key=lambda t: t.name)


_UNSET = object()


@transaction.atomic
def update_device(*, actor, device: Device, alias=_UNSET, group=_UNSET, tag_names=_UNSET, ip=None) -> Device:
    device = Device.objects.select_for_update().get(pk=device.pk)
    changed, fields = {}, []
    if alias is not _UNSET and alias != device.alias:
        changed["alias"] = {"from": device.alias, "to": alias}
        device.alias = alias
        fields.append("alias")
    if group is not _UNSET and group != device.group:
        changed["group"] = {"from": str(device.group or ""), "to": str(group or "")}
        device.group = group
        fields.append("group")
    if fields:
        device.save(update_fields=fields)
    if "group" in changed:
        hooks.devices_regrouped(device_ids=[device.pk])
    if tag_names is not _UNSET:
        tags = _tags_from_names(tag_names)
        before = sorted(device.tags.values_list("name", flat=True))
        after = [t.name for t in tags]
        if before != after:
            device.tags.set(tags)
            changed["tags"] = {"from": before, "to": after}
    if changed:
        audit.record(actor=actor, action="device.update", target=device, data=changed, ip=ip)
    return device


@transaction.atomic
def move_devices(*, actor, device_ids, group: DeviceGroup | None, ip=None) -> int:
    """Move the selected active devices into `group` (None: out of any group). One UPDATE, one
    audit row per device that moved (`device.update`, as an edit of one device writes), and the
    policy channel told once. Returns how many moved."""
    selected = Device.objects.active().filter(id__in=list(device_ids))
    selected = selected.exclude(group=group) if group else selected.filter(group__isnull=False)
    # Locked in id order (as issuing a command locks them), so two bulk changes cannot deadlock.
    moving = dict(selected.select_for_update(of=("self",)).order_by("id").values_list("id", "group__name"))
    if not moving:
        return 0
    Device.objects.filter(id__in=list(moving)).update(group=group)
    hooks.devices_regrouped(device_ids=list(moving))
    to = group.name if group else ""
    audit.record_many(actor=actor, action="device.update", targets=[Device(pk=i) for i in moving], ip=ip,
                      data_for=lambda d: {"group": {"from": moving[d.pk] or "", "to": to}, "bulk": True})
    return len(moving)


@transaction.atomic
def tag_devices(*, actor, device_ids, add=(), remove=(), ip=None) -> int:
    """Add the tags named in `add` (made when new) to the selected active devices and take those
    named in `remove` off them, in a few set-wise statements. One audit row per device that
    changed. Returns how many changed."""
    ids = list(Device.objects.active().filter(id__in=list(device_ids)).values_list("id", flat=True))
    through = Device.tags.through
    added, removed = {}, {}
    if ids and add:
        tags = _tags_from_names(add)
        have = set(through.objects.filter(device_id__in=ids, tag__in=tags).values_list("device_id", "tag_id"))
        rows = [through(device_id=i, tag_id=t.pk) for i in ids for t in tags if (i, t.pk) not in have]
        through.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
        names = {t.pk: t.name for t in tags}
        for row in rows:
            added.setdefault(row.device_id, []).append(names[row.tag_id])
    if ids and remove:
        slugs = {slugify(n)[:64] for n in remove}
        gone = through.objects.filter(device_id__in=ids, tag__name__in=slugs)
        for device_id, name in gone.values_list("device_id", "tag__name"):
            removed.setdefault(device_id, []).append(name)
        gone.delete()
    changed = added.keys() | removed.keys()
    if changed:
        def data_for(device):
            tags = {"added": sorted(added.get(device.pk, [])), "removed": sorted(removed.get(device.pk, []))}
            return {"tags": {k: v for k, v in tags.items() if v}, "bulk": True}

        audit.record_many(actor=actor, action="device.update", targets=[Device(pk=i) for i in changed], ip=ip, data_for=data_for)
    return len(changed)


@transaction.atomic
def delete_devices(*, actor, device_ids, ip=None) -> list[str]:
    """Delete at once for the admin: gone from lists, token dead on its next request, hardware id
    retired. History, inventory and deliveries are purged later, in batches, by a worker."""
    devices = list(Device.objects.active().select_for_update().filter(id__in=list(device_ids)))
    if not devices:
        return []
    now = timezone.now()
    ids = [d.pk for d in devices]
    for device in devices:
        tokens.forget_on_commit(device.token_id)
        hooks.device_deleted(device_id=str(device.pk))
        audit.record(
            actor=actor, action="device.delete", target=device, data={"hardware_id": device.hardware_id}, ip=ip
        )
    Device.objects.filter(id__in=ids).update(
        deleted_at=now, purged_at=None, token_id=None, token_hash="", token_used_at=None, fcm_token=""
    )
    DeviceStatus.objects.filter(device_id__in=ids).update(online=False)

    def enqueue():
        from devices.tasks import purge_device

        for device_id in ids:
            purge_device.delay(str(device_id))

    transaction.on_commit(enqueue)
    transaction.on_commit(lambda: schedule_status_broadcast(device_ids=ids))
    return [str(i) for i in ids]


@transaction.atomic
def restore_device(*, actor, device: Device, ip=None) -> Device:
    """Un-retire a deleted device's hardware id: it may enroll again (its old token stays dead)."""
    updated = Device.objects.filter(pk=device.pk, deleted_at__isnull=False).update(deleted_at=None)
    if updated:
        audit.record(actor=actor, action="device.restore", target=device, ip=ip)
    device.refresh_from_db()
    return device


@transaction.atomic
def create_group(*, actor, name: str, description: str = "", ip=None) -> DeviceGroup:
    group = DeviceGroup.objects.create(name=name.strip(), description=description)
    audit.record(actor=actor, action="group.create", target=group, data={"name": group.name}, ip=ip)
    return group


@transaction.atomic
def update_group(*, actor, group: DeviceGroup, name: str, description: str = "", ip=None) -> DeviceGroup:
    changed = {"name": {"from": group.name, "to": name}} if group.name != name else {}
    group.name, group.description = name.strip(), description
    group.save(update_fields=["name", "description"])
    audit.record(actor=actor, action="group.update", target=group, data=changed, ip=ip)
    return group


@transaction.atomic
def delete_group(*, actor, group: DeviceGroup, ip=None) -> None:
    audit.record(actor=actor, action="group.delete", target=group, data={"name": group.name}, ip=ip)
    members = list(Device.objects.filter(group=group).values_list("pk", flat=True))
    group.delete()
    if members:  # they have no group now: the policy channel re-resolves theirs
        hooks.devices_regrouped(device_ids=members)


@transaction.atomic
def create_tag(*, actor, name: str, ip=None) -> Tag:
    tag, created = Tag.objects.get_or_create(name=slugify(name)[:64])
    if created:
        audit.record(actor=actor, action="tag.create", target=("tag", tag.name), ip=ip)
    return tag


@transaction.atomic
def delete_tag(*, actor, tag: Tag, ip=None) -> None:
    audit.record(actor=actor, action="tag.delete", target=("tag", tag.name), ip=ip)
    tag.delete()
