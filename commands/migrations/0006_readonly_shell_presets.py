"""The stock shell presets and allowlist rules that change a device cannot work: a `shell`
command runs as the agent's own user (PROTOCOL.md v1.1), not as adb's shell user, so `am start`,
`settings put`, `cmd wifi` and `dumpsys` (android.permission.DUMP) fail or are refused. Their
presets are archived (the policy items `system_update` and `settings`, and the typed
`wifi_configure`, replace them; docs/policies.md), the seeded rules that allow them are removed,
and the read-only diagnostics (commands.services.shell_allowlist.READ_ONLY_PREFIXES) become the
default allowlist and the stock diagnostics presets. Rules an admin added are left alone."""

from django.db import migrations

SEEDED_WRITABLE = [
    ["pm", "list", "packages"],
    ["settings", "get"],
    ["dumpsys", "battery"],
    ["dumpsys", "wifi"],
    ["am", "start", "-a", "android.settings.SYSTEM_UPDATE_SETTINGS"],
    ["settings", "put", "global", "stay_on_while_plugged_in"],
    ["settings", "put", "system", "screen_off_timeout"],
    ["settings", "put", "system", "screen_brightness"],
    ["cmd", "wifi", "set-wifi-enabled"],
]
# Kept as data here (a migration must not import the app's code, which may change later).
READ_ONLY = [
    (["getprop"], "Read system properties (build, patch level, ...)"),
    (["df"], "Storage usage"),
    (["uptime"], "Uptime and load"),
    (["id"], "The agent's user and groups"),
    (["uname"], "Kernel version"),
]
ARCHIVED = {
    "OS update: check now": "Archived: an app cannot open settings as the shell user. Use a policy's system_update item.",
    "Keep screen on while charging": "Archived: `settings put` needs the shell user. Use a policy's settings.stay_on_while_plugged.",
    "Screen timeout 10 min": "Archived: `settings put` needs the shell user. Use a policy's settings.screen_off_timeout_s.",
    "Battery report": "Archived: dumpsys needs android.permission.DUMP. Battery state comes with every heartbeat.",
}
NEW_PRESETS = [
    ("Device properties", "diagnostics", {"argv": ["getprop"]}, "All system properties, the security patch level among them."),
    ("Storage usage", "diagnostics", {"argv": ["df", "-h"]}, ""),
    ("Uptime", "diagnostics", {"argv": ["uptime"]}, ""),
    ("Kernel version", "diagnostics", {"argv": ["uname", "-a"]}, ""),
]


def forwards(apps, schema_editor):
    ShellAllowRule = apps.get_model("commands", "ShellAllowRule")
    Preset = apps.get_model("commands", "Preset")
    for rule in ShellAllowRule.objects.all():
        if rule.argv_prefix in SEEDED_WRITABLE:
            rule.delete()
    for prefix, description in READ_ONLY:
        if not ShellAllowRule.objects.filter(argv_prefix=prefix).exists():
            ShellAllowRule.objects.create(argv_prefix=prefix, description=description)
    for name, note in ARCHIVED.items():
        Preset.objects.filter(name=name).update(archived=True, description=note[:300])
    for name, category, params, description in NEW_PRESETS:
        if not Preset.objects.filter(name=name).exists():
            Preset.objects.create(name=name, version=1, type="shell", params=params, description=description,
                                  category=category, is_latest=True)


class Migration(migrations.Migration):
    dependencies = [("commands", "0005_policies")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
