"""Command presets: a named, versioned type and params an operator issues again and again. An
edit makes a new version (commands record the version they used); presets hold no secrets."""

from django.db import transaction

from commands.models import SECRET_TYPES, Preset
from commands.params import ParamsError, validate
from mdm import audit


def _clean_preset(type: str, params) -> dict:
    if type in SECRET_TYPES:
        raise ParamsError({"type": ["Presets hold no secrets; use a Wi-Fi config for wifi_configure."]})
    return validate(type, params)


@transaction.atomic
def create_preset(*, actor, name: str, type: str, params, description: str = "", category: str = "", ip=None) -> Preset:
    name = (name or "").strip()
    if not name:
        raise ParamsError({"name": ["This field is required."]})
    if Preset.objects.filter(name=name).exists():
        raise ParamsError({"name": ["A preset with this name exists; edit it to make a new version."]})
    preset = Preset.objects.create(
        name=name, version=1, type=type, params=_clean_preset(type, params), description=description,
        category=category, created_by=actor if getattr(actor, "pk", None) else None,
    )
    audit.record(actor=actor, action="preset.create", target=("preset", str(preset.pk)),
                 data={"name": name, "version": 1, "type": type, "params": preset.params}, ip=ip)
    return preset


@transaction.atomic
def update_preset(*, actor, preset: Preset, ip=None, **values) -> Preset:
    """A new version; the old one stays (commands record the version they used)."""
    latest = Preset.objects.select_for_update().get(name=preset.name, is_latest=True)
    type = values.get("type", latest.type)
    params = _clean_preset(type, values.get("params", latest.params))
    Preset.objects.filter(pk=latest.pk).update(is_latest=False)
    new = Preset.objects.create(
        name=latest.name, version=latest.version + 1, type=type, params=params,
        description=values.get("description", latest.description), category=values.get("category", latest.category),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    audit.record(actor=actor, action="preset.update", target=("preset", str(new.pk)),
                 data={"name": new.name, "version": new.version, "type": type, "params": params}, ip=ip)
    return new


@transaction.atomic
def archive_preset(*, actor, preset: Preset, ip=None) -> None:
    Preset.objects.filter(name=preset.name).update(archived=True)
    audit.record(actor=actor, action="preset.archive", target=("preset", str(preset.pk)), data={"name": preset.name}, ip=ip)

