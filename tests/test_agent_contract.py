"""The server and the agent agree on what a Device Owner may be asked to do: the same settings
keys (commands/policies/items.py SETTINGS and DeviceOwnerSettings.KEYS) and the same read-only
shell list (commands/services/shell_allowlist.py and ShellAllowlist.READ_ONLY). Both sides test
against the JSON files in android-agent/core/src/test/resources/ (DeviceOwnerSettingsTest and
ShellAllowlistTest on the Java side); this file also reads the Java sources, so a key added on one
side only fails here without a JDK."""

import json
import re
from pathlib import Path

import pytest

from commands.params import ParamsError
from commands.policies.items import SETTINGS, clean_items
from commands.services.shell_allowlist import READ_ONLY_PREFIXES

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "android-agent/core/src/test/resources"
CORE = ROOT / "android-agent/core/src/main/java/dev/mdm/agent/core"
TYPES = {"bool": bool, "int": int, "time_zone": str}


def _contract() -> dict:
    return json.loads((RESOURCES / "policy-settings.json").read_text())["settings"]


def _java_settings_keys() -> list[str]:
    source = (CORE / "policy/DeviceOwnerSettings.java").read_text()
    block = re.search(r"List<String> KEYS = Collections\.unmodifiableList\(Arrays\.asList\((.*?)\)\);", source, re.S)
    assert block, "DeviceOwnerSettings.KEYS is no longer a literal list; update this test's reader"
    return re.findall(r'"([^"]+)"', block[1])


def _java_read_only_prefixes() -> list[list[str]]:
    source = (CORE / "exec/ShellAllowlist.java").read_text()
    block = re.search(r"String\[\]\[\] READ_ONLY = \{(.*?)\};", source, re.S)
    assert block, "ShellAllowlist.READ_ONLY is no longer a literal array; update this test's reader"
    return [re.findall(r'"([^"]+)"', group) for group in re.findall(r"\{([^{}]*)\}", block[1])]


def _sample(key: str, spec: dict):
    if spec["type"] == "int":
        return spec["min"]
    if spec["type"] == "time_zone":
        return "Europe/Paris"
    return key != "auto_time_zone"  # a fixed time_zone needs auto_time_zone false beside it


def test_the_server_and_the_agent_take_the_same_settings_keys():
    contract = _contract()
    assert sorted(SETTINGS) == sorted(contract)
    java = _java_settings_keys()
    assert sorted(java) == sorted(contract)
    assert len(java) == len(set(java))


def test_each_settings_key_has_the_contracts_type_and_bounds():
    for key, spec in _contract().items():
        kind, bounds = SETTINGS[key]
        assert kind is TYPES[spec["type"]], key
        assert bounds == ((spec["min"], spec["max"]) if spec["type"] == "int" else None), key


def test_the_server_accepts_every_key_at_its_bounds_and_refuses_one_past_them():
    contract = _contract()
    settings = {key: _sample(key, spec) for key, spec in contract.items()}
    assert clean_items({"settings": settings}).items["settings"] == settings
    for key, spec in contract.items():
        if spec["type"] == "int":
            assert clean_items({"settings": {key: spec["max"]}}).items["settings"] == {key: spec["max"]}
            for bad in (spec["min"] - 1, spec["max"] + 1):
                with pytest.raises(ParamsError) as caught:
                    clean_items({"settings": {key: bad}})
                assert f"items.settings.{key}" in caught.value.errors


def test_a_key_outside_the_contract_is_refused_by_the_server():
    with pytest.raises(ParamsError) as caught:
        clean_items({"settings": {"adb_enabled": True}})
    assert "items.settings.adb_enabled" in caught.value.errors


def test_the_policies_doc_lists_every_settings_key_with_its_call():
    doc = (ROOT / "docs/policies.md").read_text()
    table = doc[doc.index("`settings` keys"):doc.index("### The shell is read-only")]
    for key, spec in _contract().items():
        assert f"`{key}`" in table, key
        call = re.match(r"\w+", spec["call"])[0]
        assert call in table, (key, call)


def test_the_server_and_the_agent_share_the_read_only_shell_list():
    contract = json.loads((RESOURCES / "shell-read-only.json").read_text())["prefixes"]
    assert [list(p) for p in READ_ONLY_PREFIXES] == contract
    assert _java_read_only_prefixes() == contract
