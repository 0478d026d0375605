"""Targets of a command: exactly one of device_ids, group, tags, filter, all (PROTOCOL.md "Admin
API"). The filter takes the device list's own FilterSet fields, so the console's device list, the
API's list and targeting mean the same thing."""

import uuid

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
            _error(f"A non-empty list of device ids (at most {MAX_DEVICE_IDS}).")
        try:
            ids = sorted({str(uuid.UUID(str(v))) for v in value})
        except ValueError:
            _error("Every device id must be a UUID.")
        return {"device_ids": ids}
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
