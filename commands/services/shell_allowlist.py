"""The restricted shell's allowlist: the argv prefixes a `shell` command may start with
(PROTOCOL.md). A prefix that is itself an interpreter would allow anything, so it is refused."""

from django.db import transaction

from commands.models import ShellAllowRule
from commands.params import ParamsError
from mdm import audit

# The read-only diagnostics a `shell` command can run as the agent's own user on Android 14
# (PROTOCOL.md v1.1: no root, no adb shell user): the server's default allowlist, the agent's
# built-in one, and the most a policy's `shell_allowlist` may allow. Left out on purpose: dumpsys
# (most services need android.permission.DUMP), `settings`, `cmd`, `am`, `pm` (binder calls
# the app's user may not make), `ip` (netlink is closed to apps since Android 11), logcat (only
# the app's own lines), and `cat` (with prefix matching, `cat /proc/meminfo <file>` would also
# read the agent's own private files, its command keys among them).
READ_ONLY_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("getprop",),
    ("df",),
    ("uptime",),
    ("id",),
    ("uname",),
)
READ_ONLY_DESCRIPTIONS = {
    ("getprop",): "Read system properties (build, patch level, ...)",
    ("df",): "Storage usage",
    ("uptime",): "Uptime and load",
    ("id",): "The agent's user and groups",
    ("uname",): "Kernel version",
}


def is_read_only(argv_prefix) -> bool:
    """True when every argv this prefix allows is a read-only diagnostic: it starts with one of
    READ_ONLY_PREFIXES (none of them changes anything, whatever arguments follow)."""
    if not isinstance(argv_prefix, (list, tuple)) or not argv_prefix:
        return False
    prefix = tuple(argv_prefix)
    return any(prefix[: len(r)] == r for r in READ_ONLY_PREFIXES)


SHELL_INTERPRETERS = frozenset({"sh", "bash", "su", "/system/bin/sh", "/system/bin/su", "/system/xbin/su", "toybox", "busybox"})


def _clean_prefix(argv_prefix) -> list[str]:
    if isinstance(argv_prefix, str):
        raise ParamsError({"argv_prefix": ["An array of strings, not a command string."]})
    if not isinstance(argv_prefix, list) or not argv_prefix or not all(isinstance(a, str) and a for a in argv_prefix):
        raise ParamsError({"argv_prefix": ["A non-empty array of non-empty strings."]})
    if argv_prefix[0] in SHELL_INTERPRETERS:
        raise ParamsError({"argv_prefix": [f"“{argv_prefix[0]}” would allow any command: allow the commands themselves."]})
    return argv_prefix


@transaction.atomic
def create_allow_rule(*, actor, argv_prefix, description: str = "", enabled: bool = True, ip=None) -> ShellAllowRule:
    prefix = _clean_prefix(argv_prefix)
    if ShellAllowRule.objects.filter(argv_prefix=prefix).exists():
        raise ParamsError({"argv_prefix": ["This prefix is already allowed."]})
    rule = ShellAllowRule.objects.create(argv_prefix=prefix, description=description[:200], enabled=enabled)
    audit.record(actor=actor, action="shell_allowlist.create", target=("shellallowrule", str(rule.pk)),
                 data={"argv_prefix": prefix, "enabled": enabled}, ip=ip)
    _republish(actor=actor, ip=ip)
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
        _republish(actor=actor, ip=ip)
    return rule


@transaction.atomic
def delete_allow_rule(*, actor, rule: ShellAllowRule, ip=None) -> None:
    audit.record(actor=actor, action="shell_allowlist.delete", target=("shellallowrule", str(rule.pk)),
                 data={"argv_prefix": rule.argv_prefix}, ip=ip)
    rule.delete()
    _republish(actor=actor, ip=ip)


def _republish(*, actor, ip) -> None:
    """Policies whose shell_allowlist is "console" took the allowlist when they were saved: an
    edit makes a new version of each, so the console's allowlist reaches devices."""
    # Imported here: commands.policies.items imports this module (is_read_only).
    from commands.policies import services as policies

    using = policies.policies_using_console_allowlist()
    if using:
        policies.republish_policies(actor=actor, policies=using, reason="the console's shell allowlist changed", ip=ip)

