"""The bloatware and tweak presets the adb one-liner offers."""

from django.db import transaction

from enrollment.models import BloatwarePreset, TweakPreset
from mdm import audit


def save_bloatware_preset(*, actor, preset: BloatwarePreset | None, name: str, description: str, packages: list[str], ip=None) -> BloatwarePreset:
    return _save_preset(actor=actor, preset=preset, model=BloatwarePreset, action="bloatware_preset",
                        name=name, description=description, field="packages", items=packages, ip=ip)


def save_tweak_preset(*, actor, preset: TweakPreset | None, name: str, description: str, settings: list[dict], ip=None) -> TweakPreset:
    return _save_preset(actor=actor, preset=preset, model=TweakPreset, action="tweak_preset",
                        name=name, description=description, field="settings", items=settings, ip=ip)


@transaction.atomic
def _save_preset(*, actor, preset, model, action: str, name: str, description: str, field: str, items: list, ip):
    created = preset is None
    preset = preset or model()
    preset.name, preset.description = name.strip(), description
    setattr(preset, field, items)
    preset.save(update_fields=None if created else ["name", "description", field, "updated_at"])
    audit.record(
        actor=actor,
        action=f"{action}.{'create' if created else 'update'}",
        target=(model._meta.model_name, str(preset.pk)),
        data={"name": preset.name, field: len(items)},
        ip=ip,
    )
    return preset


@transaction.atomic
def delete_preset(*, actor, preset, ip=None) -> None:
    audit.record(actor=actor, action=f"{preset._meta.model_name}.delete", target=(preset._meta.model_name, str(preset.pk)), data={"name": preset.name}, ip=ip)
    preset.delete()
