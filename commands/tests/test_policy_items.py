"""Server-side validation of policy items (docs/policies.md): each wrong value is a ParamsError
naming the item and the field; any JSON at all is either a policy or such an error."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import services
from commands.params import ParamsError
from commands.policies.items import clean_items, for_device, masked
from mdm import text

pytestmark = pytest.mark.django_db


def error_of(items) -> tuple[str, str]:
    with pytest.raises(ParamsError) as caught:
        clean_items(items)
    name, messages = next(iter(caught.value.errors.items()))
    return name, messages[0]


def test_a_full_policy_is_cleaned_with_its_defaults():
    cleaned = clean_items({
        "kiosk": {"package": "com.example.kiosk"},
        "system_update": {"type": "windowed", "window_start_min": 120, "window_end_min": 240,
                          "freeze_periods": [{"start": "12-01", "end": "12-31"}]},
        "settings": {"stay_on_while_plugged": True, "screen_off_timeout_s": 600},
        "restrictions": ["no_factory_reset", "no_debugging_features", "no_factory_reset"],
        "shell_allowlist": [["getprop"], ["df", "-h"]],
    })
    assert cleaned.items["kiosk"] == {"package": "com.example.kiosk", "lock_task": True, "relaunch": True, "status_bar": False}
    assert cleaned.items["restrictions"] == ["no_debugging_features", "no_factory_reset"]
    assert cleaned.items["system_update"]["freeze_periods"] == [{"start": "12-01", "end": "12-31"}]


@pytest.mark.parametrize("items, field", [
    ({"kiosk": {"package": "not a package"}}, "items.kiosk.package"),
    ({"kiosk": {"package": "com.a.b", "lock_task": "yes"}}, "items.kiosk.lock_task"),
    ({"kiosk": {"package": "com.a.b", "colour": 1}}, "items.kiosk.colour"),
    ({"system_update": {"type": "soon"}}, "items.system_update.type"),
    ({"system_update": {"type": "windowed", "window_start_min": 1440, "window_end_min": 0}}, "items.system_update.window_start_min"),
    ({"system_update": {"type": "automatic", "window_start_min": 10}}, "items.system_update.window_start_min"),
    ({"system_update": {"type": "postpone", "freeze_periods": [{"start": "13-01", "end": "01-10"}]}}, "items.system_update.freeze_periods[0].start"),
    ({"system_update": {"type": "postpone", "freeze_periods": [{"start": "02-29", "end": "03-10"}]}}, "items.system_update.freeze_periods[0].start"),
    ({"settings": {"screen_off_timeout_s": 1}}, "items.settings.screen_off_timeout_s"),
    ({"settings": {"adb_enabled": True}}, "items.settings.adb_enabled"),
    ({"settings": {"time_zone": "Europe/Paris"}}, "items.settings.time_zone"),
    ({"restrictions": ["no_such_thing"]}, "items.restrictions[0]"),
    ({"wifi": ["not-a-uuid"]}, "items.wifi[0].id"),
    ({"wifi": [{"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}]}, "items.wifi[0].id"),
    ({"shell_allowlist": [["dumpsys", "battery"]]}, "items.shell_allowlist[0]"),
    ({"shell_allowlist": [["sh", "-c", "id"]]}, "items.shell_allowlist[0]"),
    ({"shell_allowlist": ["getprop"]}, "items.shell_allowlist[0]"),
    ({"shell_allowlist": [["getprop", "\ud800"]]}, "items.shell_allowlist[0]"),
    ({"colour": 1}, "items"),
])
def test_each_bad_value_is_refused_naming_its_item_and_field(items, field):
    assert error_of(items)[0] == field


def test_a_freeze_period_longer_than_90_days_is_refused():
    name, message = error_of({"system_update": {"type": "automatic", "freeze_periods": [{"start": "01-01", "end": "04-01"}]}})
    assert name == "items.system_update.freeze_periods[0]" and "91 days" in message


def test_a_90_day_freeze_period_over_the_new_year_is_fine():
    cleaned = clean_items({"system_update": {"type": "automatic", "freeze_periods": [{"start": "11-03", "end": "01-31"}]}})
    assert cleaned.items["system_update"]["freeze_periods"] == [{"start": "11-03", "end": "01-31"}]


def test_freeze_periods_closer_than_60_days_are_refused_also_across_the_year_end():
    name, message = error_of({"system_update": {"type": "automatic", "freeze_periods": [
        {"start": "03-01", "end": "03-31"}, {"start": "05-01", "end": "05-10"}]}})
    assert name == "items.system_update.freeze_periods" and "at least 60 days" in message
    # 12-01..12-31 and 01-15..01-20 are 14 days apart over the new year.
    assert error_of({"system_update": {"type": "automatic", "freeze_periods": [
        {"start": "01-15", "end": "01-20"}, {"start": "12-01", "end": "12-31"}]}})[0] == "items.system_update.freeze_periods"
    assert "59 days apart" in error_of({"system_update": {"type": "automatic", "freeze_periods": [
        {"start": "01-01", "end": "01-31"}, {"start": "04-01", "end": "04-30"}]}})[1]  # 02-01..03-31 free
    clean_items({"system_update": {"type": "automatic", "freeze_periods": [  # 01-31..03-31 free: 60 days
        {"start": "01-01", "end": "01-30"}, {"start": "04-01", "end": "04-30"}]}})


def test_overlapping_freeze_periods_are_refused():
    assert "overlap" in error_of({"system_update": {"type": "automatic", "freeze_periods": [
        {"start": "03-01", "end": "03-31"}, {"start": "03-15", "end": "04-10"}]}})[1]


def test_a_fixed_time_zone_needs_automatic_time_zone_off():
    cleaned = clean_items({"settings": {"auto_time_zone": False, "time_zone": "Europe/Paris"}})
    assert cleaned.items["settings"]["time_zone"] == "Europe/Paris"


def test_wifi_references_stored_configs_and_keeps_the_password_apart(admin_user):
    config = services.create_wifi_config(actor=admin_user, name="Store", ssid="store-net", password="s3cret-pass")
    cleaned = clean_items({"wifi": [str(config.pk)]})
    assert cleaned.items["wifi"] == [{"id": str(config.pk), "ssid": "store-net", "security": "wpa2", "hidden": False}]
    assert cleaned.secret == {str(config.pk): "s3cret-pass"}
    assert for_device(cleaned.items, cleaned.secret)["wifi"][0]["password"] == "s3cret-pass"
    assert masked(cleaned.items)["wifi"][0]["password"] == "***"


def test_console_shell_allowlist_is_taken_when_it_is_read_only_only(admin_user):
    from commands.models import ShellAllowRule

    ShellAllowRule.objects.all().delete()
    services.create_allow_rule(actor=admin_user, argv_prefix=["getprop"])
    cleaned = clean_items({"shell_allowlist": "console"})
    assert cleaned.items["shell_allowlist"] == [["getprop"]] and cleaned.sources == {"shell_allowlist": "console"}
    services.create_allow_rule(actor=admin_user, argv_prefix=["dumpsys", "battery"])
    assert error_of({"shell_allowlist": "console"})[0].startswith("items.shell_allowlist")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=20) | st.sampled_from(["getprop", "df", "com.example.kiosk", "12-01"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
ITEM_NAMES = st.sampled_from(["kiosk", "system_update", "settings", "restrictions", "wifi", "shell_allowlist", "apps", "other"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=JSON | st.dictionaries(ITEM_NAMES, JSON, max_size=4))
def test_any_json_is_a_policy_or_a_named_400(raw):
    try:
        cleaned = clean_items(raw)
    except ParamsError as exc:
        assert exc.errors and all(name.startswith("items") and messages for name, messages in exc.errors.items())
    else:
        assert set(cleaned.items) <= {"kiosk", "system_update", "settings", "restrictions", "wifi", "shell_allowlist", "apps"}
        assert text.clean_deep(cleaned.items)  # nothing PostgreSQL would refuse to store (a 500)
