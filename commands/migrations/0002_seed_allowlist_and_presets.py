"""Seed the shell allowlist and the stock presets. Admins edit both afterwards (audited)."""

from django.db import migrations

ALLOW = [
    (["pm", "list", "packages"], "List installed packages"),
    (["getprop"], "Read system properties"),
    (["settings", "get"], "Read a system setting"),
    (["dumpsys", "battery"], "Battery state"),
    (["dumpsys", "wifi"], "Wi-Fi state"),
    (["df"], "Storage usage"),
    (["uptime"], "Uptime"),
    (["am", "start", "-a", "android.settings.SYSTEM_UPDATE_SETTINGS"], "Open the system update screen"),
    (["settings", "put", "global", "stay_on_while_plugged_in"], "Keep the screen on while charging"),
    (["settings", "put", "system", "screen_off_timeout"], "Screen timeout"),
    (["settings", "put", "system", "screen_brightness"], "Screen brightness"),
    (["cmd", "wifi", "set-wifi-enabled"], "Turn Wi-Fi on or off"),
]

PRESETS = [
    ("OS update: check now", "os-update", "shell", {"argv": ["am", "start", "-a", "android.settings.SYSTEM_UPDATE_SETTINGS"]},
     "Opens the system update screen, which checks for an OS update."),
    ("Reboot", "power", "reboot", {}, "Restart the device."),
    ("Launch kiosk app", "apps", "launch_app", {"package": "com.example.kiosk"},
     "Bulk app launch: target many devices with one command."),
    ("Keep screen on while charging", "system-tweaks", "shell",
     {"argv": ["settings", "put", "global", "stay_on_while_plugged_in", "7"]}, "AC, USB and wireless."),
    ("Screen timeout 10 min", "system-tweaks", "shell",
     {"argv": ["settings", "put", "system", "screen_off_timeout", "600000"]}, ""),
    ("Battery report", "diagnostics", "shell", {"argv": ["dumpsys", "battery"]}, ""),
    ("Ping", "diagnostics", "ping", {}, "Round trip check."),
]


def seed(apps, schema_editor):
    ShellAllowRule = apps.get_model("commands", "ShellAllowRule")
    Preset = apps.get_model("commands", "Preset")
    for prefix, description in ALLOW:
        if not ShellAllowRule.objects.filter(argv_prefix=prefix).exists():
            ShellAllowRule.objects.create(argv_prefix=prefix, description=description)
    for name, category, type_, params, description in PRESETS:
        if not Preset.objects.filter(name=name).exists():
            Preset.objects.create(name=name, version=1, type=type_, params=params, description=description,
                                  category=category, is_latest=True)


def unseed(apps, schema_editor):
    apps.get_model("commands", "Preset").objects.filter(name__in=[p[0] for p in PRESETS], version=1).delete()


class Migration(migrations.Migration):
    dependencies = [("commands", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
