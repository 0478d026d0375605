"""The stock presets and the default shell allowlist after commands migration 0006: only
read-only diagnostics that run as the agent's own user on Android 14 (PROTOCOL.md v1.1)."""

import pytest

from commands.models import Preset, ShellAllowRule
from commands.params import ParamsError, validate
from commands.services.shell_allowlist import READ_ONLY_PREFIXES, is_read_only

pytestmark = pytest.mark.django_db


def test_the_default_allowlist_is_the_read_only_list():
    assert sorted(tuple(r.argv_prefix) for r in ShellAllowRule.objects.all()) == sorted(READ_ONLY_PREFIXES)


def test_every_live_stock_shell_preset_is_a_read_only_diagnostic_the_server_accepts():
    shell = Preset.objects.filter(type="shell", archived=False, is_latest=True)
    assert shell.exists()
    for preset in shell:
        assert is_read_only(preset.params["argv"]), preset.name
        assert validate("shell", preset.params) == preset.params


def test_the_presets_that_change_a_device_are_archived_and_say_what_replaces_them():
    for name in ("OS update: check now", "Keep screen on while charging", "Screen timeout 10 min", "Battery report"):
        preset = Preset.objects.get(name=name)
        assert preset.archived and preset.description.startswith("Archived:")


@pytest.mark.parametrize("argv", [["am", "start", "-a", "android.settings.SYSTEM_UPDATE_SETTINGS"],
                                  ["settings", "put", "global", "stay_on_while_plugged_in", "7"],
                                  ["cmd", "wifi", "set-wifi-enabled", "enabled"], ["dumpsys", "battery"]])
def test_writes_through_the_shell_are_refused_by_the_default_allowlist(argv):
    with pytest.raises(ParamsError) as caught:
        validate("shell", {"argv": argv})
    assert caught.value.code == "not_allowed"
