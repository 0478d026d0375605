"""The restricted shell's allowlist: the argv prefixes a `shell` command may start with
(PROTOCOL.md). A prefix that is itself an interpreter would allow anything, so it is refused."""

from django.db import transaction

from commands.models import ShellAllowRule
from commands.params import ParamsError
from mdm import audit

SHELL_INTERPRETERS = frozenset({"sh", "bash", "su", "/system/bin/sh", "/system/bin/su", "/system/xbin/su", "toybox", "busybox"})


def _clean_prefix(argv_prefix) -> list[str]:
    if isinstance(argv_prefix, str):
        raise ParamsError({"argv_prefix": ["An array of strings, not a command string."]})
    if not isinstance(argv_prefix, list) or not argv_prefix or not all(isinstance(a, str) and a for a in argv_prefix):
        raise ParamsError({"argv_prefix": ["A non-empty array of non-empty strings."]})
    if argv_prefix[0] in SHELL_INTERPRETERS:
        raise ParamsError({"argv_prefix": [f"{argv_prefix[0]!r} would allow arbitrary commands; allow the commands themselves."]})
    return argv_prefix


@transaction.atomic
def create_allow_rule(*, actor, argv_prefix, description: str = "", enabled: bool = True, ip=None) -> ShellAllowRule:
    prefix = _clean_prefix(argv_prefix)
    if ShellAllowRule.objects.filter(argv_prefix=prefix).exists():
        raise ParamsError({"argv_prefix": ["This prefix is already allowed."]})
    rule = ShellAllowRule.objects.create(argv_prefix=prefix, description=description[:200], enabled=enabled)
    audit.record(actor=actor, action="shell_allowlist.create", target=("shellallowrule", str(rule.pk)),
                 data={"argv_prefix": prefix, "enabled": enabled}, ip=ip)
    return rule


@transaction.atomic
def update_allow_rule(*, actor, rule: ShellAllowRule, ip=None, **values) -> ShellAllowRule:
    changed = {}
    if "argv_prefix" in values:
        values["argv_prefix"] = _clean_prefix(values["argv_prefix"])
    for name in ("argv_prefix", "description", "enabled"):
        if name in values and getattr(rule, name) != values[name]:
            changed[name] = {"from": getattr(rule, name), "to": values[name]}
            setattr(rule, name, values[name])
    if changed:
        rule.save(update_fields=[*changed, "updated_at"])
        audit.record(actor=actor, action="shell_allowlist.update", target=("shellallowrule", str(rule.pk)), data=changed, ip=ip)
    return rule


@transaction.atomic
def delete_allow_rule(*, actor, rule: ShellAllowRule, ip=None) -> None:
    audit.record(actor=actor, action="shell_allowlist.delete", target=("shellallowrule", str(rule.pk)),
                 data={"argv_prefix": rule.argv_prefix}, ip=ip)
    rule.delete()

