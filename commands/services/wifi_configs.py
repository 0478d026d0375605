"""Saved Wi-Fi configs: an SSID with its password encrypted at rest (commands.crypto), pushed to a
group (or every device) as a `wifi_configure` command, which, being secret, travels only in
heartbeat answers and pulls, never in an FCM message."""

from django.db import transaction

from commands import crypto
from commands.models import CommandType, WifiConfig
from commands.params import ParamsError, validate
from commands.services.issuing import Issued, issue_command
from mdm import audit


def _clean_wifi(values: dict, has_password: bool) -> dict:
    probe = {
        "ssid": values.get("ssid"),
        "security": values.get("security", "wpa2"),
        "password": values.get("password") or ("x" * 8 if has_password and values.get("security", "wpa2") in ("wpa2", "wpa3") else ""),
        "hidden": values.get("hidden", False),
    }
    validate(CommandType.WIFI_CONFIGURE, probe)
    return probe


@transaction.atomic
def create_wifi_config(*, actor, name: str, ssid: str, security: str = "wpa2", password: str = "", hidden: bool = False,
                       group=None, ip=None) -> WifiConfig:
    if not (name or "").strip():
        raise ParamsError({"name": ["This field is required."]})
    if WifiConfig.objects.filter(name=name.strip()).exists():
        raise ParamsError({"name": ["A Wi-Fi config with this name exists."]})
    _clean_wifi({"ssid": ssid, "security": security, "password": password, "hidden": hidden}, False)
    config = WifiConfig.objects.create(
        name=name.strip(), ssid=ssid, security=security, hidden=hidden, group=group,
        password_encrypted=crypto.encrypt_bytes(password.encode()) if password else "",
    )
    audit.record(actor=actor, action="wifi_config.create", target=("wificonfig", str(config.pk)),
                 data={"name": config.name, "ssid": ssid, "security": security, "password": password, "hidden": hidden,
                       "group": group.name if group else None}, ip=ip)
    return config


@transaction.atomic
def update_wifi_config(*, actor, config: WifiConfig, ip=None, **values) -> WifiConfig:
    """`password` None or absent keeps the stored one; "" clears it."""
    merged = {
        "ssid": values.get("ssid", config.ssid),
        "security": values.get("security", config.security),
        "hidden": values.get("hidden", config.hidden),
        "password": values.get("password"),
    }
    keep_password = values.get("password") is None and config.has_password
    _clean_wifi(merged, keep_password)
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
        if not values["name"]:
            raise ParamsError({"name": ["This field is required."]})
        if WifiConfig.objects.filter(name=values["name"]).exclude(pk=config.pk).exists():
            raise ParamsError({"name": ["A Wi-Fi config with this name exists."]})
    changed = {}
    for name in ("name", "ssid", "security", "hidden", "group"):
        if name in values and getattr(config, name) != values[name]:
            changed[name] = str(values[name]) if name == "group" else values[name]
            setattr(config, name, values[name])
    if values.get("password") is not None:
        config.password_encrypted = crypto.encrypt_bytes(values["password"].encode()) if values["password"] else ""
        changed["password"] = "***" if values["password"] else "(cleared)"
    if changed:
        config.save(update_fields=[*(n for n in changed if n != "password"), *(["password_encrypted"] if "password" in changed else []), "updated_at"])
        audit.record(actor=actor, action="wifi_config.update", target=("wificonfig", str(config.pk)), data=changed, ip=ip)
        _republish(actor=actor, config=config, ip=ip)
    return config


def _republish(*, actor, config: WifiConfig, ip) -> None:
    """Policies copy a Wi-Fi config into each version (a version never changes): an edit makes
    a new version of every policy whose current one lists it, so its devices follow."""
    # Imported here: commands.policies.items imports this package's shell_allowlist module.
    from commands.policies import services as policies

    using = policies.policies_using_wifi(config.pk)
    if using:
        policies.republish_policies(actor=actor, policies=using, reason=f"Wi-Fi config {config.name} changed", ip=ip)


@transaction.atomic
def delete_wifi_config(*, actor, config: WifiConfig, ip=None) -> None:
    audit.record(actor=actor, action="wifi_config.delete", target=("wificonfig", str(config.pk)), data={"name": config.name}, ip=ip)
    config.delete()


def push_wifi_config(*, actor, config: WifiConfig, expires_in_s: int | None = None, ip=None) -> Issued:
    """Issue a `wifi_configure` command to the config's group (or every device). Secret, so it
    travels only in heartbeat answers and pulls."""
    issued = issue_command(
        actor=actor,
        type=CommandType.WIFI_CONFIGURE,
        params={"ssid": config.ssid, "security": config.security, "password": config.decrypted_password(), "hidden": config.hidden},
        target={"group": config.group.name} if config.group_id else {"all": True},
        expires_in_s=expires_in_s,
        wifi_config=config,
        ip=ip,
    )
    WifiConfig.objects.filter(pk=config.pk).update(last_pushed_at=issued.command.created_at)
    return issued
