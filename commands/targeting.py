"""Targets of a command: exactly one of device_ids, group, tags, filter, all (PROTOCOL.md "Admin
API"). The filter takes the device list's own FilterSet fields, so the console's device list, the
API's list and targeting mean the same thing."""

import uuid

from django.db.models import Q

from devices.filters import DeviceFilter
from devices.models import Device, DeviceGroup, Tag

from commands.params import ParamsError
from mdm import text

KINDS = ("device_ids", "group", "tags", "filter", "all")
MAX_DEVICE_IDS = 100_000


def _error(message: str, field: str = "target"):
    raise ParamsError({field: [message]})


def normalize(target) -> dict:
    """A canonical spec (what the command stores) or ParamsError."""
    if not isinstance(target, dict):
        _error("Must be an object with one of: " + ", ".join(KINDS) + ".")
    given = [k for k in KINDS if k in target]
    if len(given) != 1:
        _error("Give exactly one of: " + ", ".join(KINDS) + ".")
    kind = given[0]
    value = target[kind]
    if kind == "device_ids":
        if not isinstance(value, list) or not value or len(value) > MAX_DEVICE_IDS:
            _error(f"A non-empty list of devices (at most {MAX_DEVICE_IDS}): their hardware ids, names or ids.")
        return {"device_ids": _device_ids(value)}
    if kind == "group":
        # A NUL or a lone surrogate would reach PostgreSQL (a 500): refused here, for every caller.
        if not isinstance(value, str) or not value.strip() or not text.is_clean(value):
            _error("A group name (no NUL or lone surrogate).")
        return {"group": value.strip()}
    if kind == "tags":
        if not isinstance(value, list) or not value or not all(isinstance(t, str) and t and text.is_clean(t) for t in value):
            _error("A non-empty list of tag names (no NUL or lone surrogate).")
        return {"tags": sorted(set(value))}
    if kind == "filter":
        if not isinstance(value, dict) or not value:
            _error("An object of device list filters: " + ", ".join(DeviceFilter.base_filters) + ".")
        unknown = sorted(set(value) - set(DeviceFilter.base_filters))
        if unknown:
            _error(f"Unknown filter fields {unknown}; known: {', '.join(DeviceFilter.base_filters)}.")
        return {"filter": {k: v for k, v in value.items() if v not in (None, "")}}
    if value is not True:
        _error('"all" must be true.')
    return {"all": True}


def _as_uuid(value) -> str | None:
    """The canonical id when `value` is written as one (36 characters with dashes): a hardware id
    of 32 hex digits must stay a hardware id, though uuid.UUID() would read it."""
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return str(parsed) if str(parsed) == value.lower() else None


def _device_ids(values: list) -> list[str]:
    """Device ids for what a person gives: the ids themselves, or what the devices list shows,
    hardware ids and names (aliases). Ids are kept as given (resolve() says which are unknown);
    the rest are looked up, one query, and must each name exactly one active device."""
    ids, labels = set(), set()
    for value in _values(values):
        as_id = _as_uuid(value)
        if as_id:
            ids.add(as_id)
        else:
            labels.add(value)
    if labels:
        found: dict[str, set] = {}
        rows = list(Device.objects.active().filter(Q(hardware_id__in=labels) | Q(alias__in=labels))
                    .values_list("id", "hardware_id", "alias"))
        by_hardware_id = {hw: str(pk) for pk, hw, _ in rows if hw in labels}
        for pk, hw, alias in rows:
            if alias in labels and alias not in by_hardware_id:
                found.setdefault(alias, set()).add(str(pk))
        unknown = sorted(labels - by_hardware_id.keys() - found.keys())
        if unknown:
            _error(f"No device has the hardware id or name {_quoted(unknown)}.")
        shared = sorted(name for name, pks in found.items() if len(pks) > 1)
        if shared:
            _error(f"More than one device is named {_quoted(shared)}: give their hardware ids.")
        ids |= {by_hardware_id[label] if label in by_hardware_id else next(iter(found[label])) for label in labels}
    return sorted(ids)


def _values(values: list) -> list:
    """The non-blank entries, stripped; refused when one would reach PostgreSQL as an error."""
    out = []
    for value in values:
        if isinstance(value, uuid.UUID):
            out.append(value)
            continue
        if not isinstance(value, str) or not text.is_clean(value):
            _error("Each device is a hardware id, name or id (text without NUL or lone surrogates).")
        if value.strip():
            out.append(value.strip())
    if not out:
        _error("Give at least one device: its hardware id, name or id.")
    return out


def _quoted(values: list[str], limit: int = 10) -> str:
    shown = ", ".join(f"“{v}”" for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def resolve(spec: dict):
    """The active devices a normalized spec selects (a queryset of Device)."""
    devices = Device.objects.active()
    if "device_ids" in spec:
        found = devices.filter(id__in=spec["device_ids"])
        if len(spec["device_ids"]) <= 1000:
            missing = set(spec["device_ids"]) - {str(i) for i in found.values_list("id", flat=True)}
            if missing:
                _error(f"Unknown or deleted devices: {', '.join(sorted(missing)[:20])}.")
        return found
    if "group" in spec:
        if not DeviceGroup.objects.filter(name=spec["group"]).exists():
            _error(f"No group named {spec['group']!r}.")
        return devices.filter(group__name=spec["group"])
    if "tags" in spec:
        known = set(Tag.objects.filter(name__in=spec["tags"]).values_list("name", flat=True))
        missing = sorted(set(spec["tags"]) - known)
        if missing:
            _error(f"Unknown tags: {', '.join(missing)}.")
        return devices.filter(id__in=Device.objects.filter(tags__name__in=spec["tags"]).values("id"))
    if "filter" in spec:
        fs = DeviceFilter(data=spec["filter"], queryset=devices)
        if not fs.is_valid():
            raise ParamsError({"target": [f"filter.{k}: {v[0]}" for k, v in fs.errors.items()]})
        return devices.filter(id__in=fs.qs.values("id"))
    return devices


def resolve_ids(spec: dict) -> list:
    return list(resolve(spec).order_by("id").values_list("id", flat=True))


def describe(spec: dict) -> str:
    if "device_ids" in spec:
        n = len(spec["device_ids"])
        return f"{n} device{'s' if n != 1 else ''} by id"
    if "group" in spec:
        return f"group {spec['group']}"
    if "tags" in spec:
        return "tags " + ", ".join(spec["tags"])
    if "filter" in spec:
        return "filter " + ", ".join(f"{k}={v}" for k, v in spec["filter"].items())
    return "all devices"
