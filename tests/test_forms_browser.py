"""Every console form, in a real browser (Debian's Chromium) against a real daphne: a bad value is
answered with a 4xx that htmx swaps in place (base.html's responseHandling), and the server's
message appears beside the field it is about, once, in the user's terms (no field codes, no Python
reprs); the page is not reloaded.

The browser's own checks (required, min, max, maxlength) are switched off for the submission
(`form.noValidate`, values set by script): what is tested is the server's answer, which is all an
API client, a crafted request or an older browser gets.

CASES covers the forms; EXEMPT names the forms with nothing to get wrong (buttons, lists) and why.
test_every_console_form_is_listed walks the templates for <form> elements, so a new form fails
it until it is added to one or the other."""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
APKS = ROOT / "tests" / "fixtures" / "apks"


@dataclass(frozen=True)
class Case:
    key: str  # the form, as form_keys() names it: "<template> <#id or url name>"
    path: str  # the page it is on ({placeholders} from the fleet fixture)
    form: str  # a CSS selector for it on that page
    values: dict  # input name -> value (True/False ticks a checkbox)
    field: str  # the input the message must stand beside (its label, fieldset or error slot)
    message: str
    answer: str = ""  # a part of the URL of the request the form sends (default: the page's path)
    near: str = ""  # instead of `field`: where the message must appear (a form that answers elsewhere)
    open: str = ""  # clicked first (the settings drawer, the preset editor)
    send: str = "submit"  # "submit" (its submit button) or "change" (a filter bar sent on change)
    events: bool = True  # fire input and change as typing would (not on a filter bar: that sends it)


CASES = [
    Case("_settings_form.html #settings-form", "/", "#settings-form", {"heartbeat_interval_s": "5"},
         "heartbeat_interval_s", "Between 10 and 3600 seconds.", answer="/settings/", open="#open-settings"),
    Case("enrollment/_key_form.html enrollment:create_key", "/enrollment/", "#key-form form", {"name": "Shop", "expires_in_days": "0"},
         "expires_in_days", "A whole number from 1 to 3,650 days.", answer="/enrollment/keys/"),
    Case("enrollment/_qr_form.html enrollment:build_qr", "/enrollment/", "#qr-builder form", {"locale": "english"},
         "locale", "A locale like en_US.", answer="/enrollment/qr/"),
    Case("enrollment/_oneliner_form.html enrollment:build_oneliner", "/enrollment/", "#oneliner form", {"sha256": "xyz"},
         "sha256", "64 hexadecimal digits (the SHA-256 of the APK file).", answer="/enrollment/one-liner/"),
    Case("enrollment/_preset_form.html #preset-form", "/enrollment/", "#preset-form", {"name": "Extras", "packages": "not a package"},
         "packages", "Not a package name: not a package", answer="/enrollment/presets/bloatware/new/",
         open="a[hx-get$='/presets/bloatware/new/']"),
    Case("devices/_device_edit.html #device-edit", "/devices/{device}/", "#device-edit", {"tags": "lobby, !!!"},
         "tags", "A tag needs a letter or a digit: “!!!”.", answer="/devices/{device}/"),
    Case("devices/_group_form.html #group-form", "/devices/groups/", "#group-form", {"name": "warehouse-a"},
         "name", "A group with this name exists."),
    Case("accounts/_api_key_form.html #api-key-form", "/accounts/api-keys/", "#api-key-form", {"name": "CI", "expires_in_days": "0"},
         "expires_in_days", "A whole number from 1 to 3,650 days."),
    Case("accounts/_profile_form.html #profile-form", "/accounts/profile/", "#profile-form", {"email": "not-an-address"},
         "email", "Enter a valid email address."),
    Case("accounts/_password_form.html #password-form", "/accounts/password/", "#password-form",
         {"old_password": "not-my-password", "new_password1": "a-Long-new-passphrase-42", "new_password2": "a-Long-new-passphrase-42"},
         "old_password", "Your old password was entered incorrectly."),
    Case("alerts/_rule_form.html #rule-form", "/alerts/rules/new/?kind=battery_low", "#rule-form", {"param_percent": "500"},
         "param_percent", "Battery under (%): a whole number from 1 to 100.", answer="/alerts/rules/new/"),
    Case("alerts/_webhooks_panel.html #webhook-form", "/alerts/webhooks/", "#webhook-form", {"name": "Pager", "url": "ftp://pager.example"},
         "url", "An http:// or https:// address of at most 500 characters."),
    Case("alerts/_webhook_form.html #webhook-form", "/alerts/webhooks/{hook}/", "#webhook-form", {"url": "not an address"},
         "url", "An http:// or https:// address of at most 500 characters."),
    Case("alerts/_windows_panel.html #window-form", "/alerts/maintenance/", "#window-form", {"duration_minutes": "0"},
         "duration_minutes", "Lasts (minutes): a whole number from 1 to 129,600."),
    Case("apks/_deploy_form.html #deploy-form", "/apks/{release}/", "#deploy-form", {"staged": True, "waves": "10, 50"},
         "waves", "The last wave must be 100", answer="/deploy/"),
    Case("apks/_rollout_status.html apks:rollout_rollback", "/apks/rollouts/{rollout}/", "form.rollback", {"confirm_data_loss": False},
         "confirm_data_loss", "Tick the box first", answer="/rollback/"),
    Case("apks/index.html #release-filters", "/apks/", "#release-filters", {"version_code_min": "-5"},
         "version_code_min", "A whole number, 0 or more.", send="change", events=False),
    Case("audit_log.html audit-log", "/audit/", "form.audit-filters", {"actor": "x" * 201},
         "actor", "Ensure this value has at most 200 characters (it has 201).", events=False),
    Case("commands/_wifi_form.html #wifi-form", "/commands/wifi/", "#wifi-form",
         {"name": "Lobby", "ssid": "Lobby-5G", "security": "wpa2", "password": "short"},
         "password", "WPA passwords have 8-63 characters."),
    Case("commands/_wifi_push.html commands:wifi_push", "/commands/wifi/", "#wifi-{wifi} form", {},
         "", "No device in group empty-shelf to send it to.", answer="/push/", near="#wifi-{wifi} form"),
    Case("commands/_allow_form.html #allow-form", "/commands/allowlist/", "#allow-form", {"argv_prefix": "sh"},
         "argv_prefix", "“sh” would allow any command"),
    Case("commands/_preset_form.html #preset-form", "/commands/presets/", "#preset-form",
         {"name": "Diag", "type": "shell", "params": "{not json"}, "params", "Not valid JSON."),
    Case("commands/compose.html #composer", "/commands/new/", "#composer",
         {"target_kind": "device_ids", "device_ids": "no-such-tablet"}, "", "No device has the hardware id or name",
         answer="/commands/new/preview/", near="#preview"),
    Case("commands/policies/_editor.html #policy-editor", "/commands/policies/new/", "#policy-editor",
         {"name": "Lobby kiosk", "item": True, "kiosk_package": "not a package"},
         "kiosk_package", "A package name like com.example.kiosk is required."),
    Case("commands/policies/detail.html #assign-form", "/commands/policies/{policy}/", "#assign-form",
         {"target_kind": "device_ids", "device_ids": "not-a-device"}, "", "No device has the hardware id or name",
         answer="/assign/", near="#assign-preview"),
]

EXEMPT = {
    "base.html accounts:logout": "a sign-out button: no input",
    "accounts/login.html form": "public, before sign-in: a plain form answered with its page",
    "accounts/register.html form": "public, before sign-in: a plain form answered with its page",
    "accounts/password_reset.html form": "public, before sign-in: a plain form answered with its page",
    "accounts/password_reset_confirm.html form": "public, before sign-in: a plain form answered with its page",
    "accounts/_user_row.html accounts:user_approve": "a role picked from a list",
    "accounts/_user_row.html accounts:user_set_role": "a role picked from a list",
    "alerts/_alert_actions.html alerts:snooze": "a duration picked from a list",
    "alerts/_preferences_form.html #preferences-form": "a checkbox and lists: nothing to type wrong",
    "alerts/index.html #alert-filters": "lists only",
    "alerts/rule_form.html alerts:rule_new": "a kind picked from a list (it opens that kind's rule form)",
    "commands/_allow_row.html commands:allow_rule_toggle": "a button",
    "commands/_allow_row.html commands:allow_rule_delete": "a button",
    "commands/_command_actions.html commands:cancel": "a button",
    "commands/_retry_preview.html commands:retry": "a confirm button after the dry-run count",
    "commands/_device_commands.html form": "quick actions: buttons and a preset picked from a list",
    "commands/presets.html commands:preset_archive": "a button",
    "commands/policies/detail.html commands:policy_unassign": "buttons",
    "commands/policies/detail.html commands:policy_diff": "two versions picked from lists",
    "commands/index.html commands:index": "lists and free text: nothing to type wrong",
    "devices/device_list.html devices:index": "lists and a search box",
    "devices/_device_table.html #bulk-form": "ticks, lists and a tag name: its refusals (a bad tag) are devices/tests/test_bulk_actions.py's",
}

FORM_TAG = re.compile(r"<form\b(.*?)>", re.S)


def form_keys() -> set[str]:
    """Every <form> in the templates, as "<template> <#its id, or the url name it sends to>"."""
    keys = set()
    for path in sorted(TEMPLATES.rglob("*.html")):
        for match in FORM_TAG.finditer(path.read_text()):
            attrs = match.group(1)
            found = re.search(r'\bid="([^"{]+)"', attrs)
            name = "#" + found.group(1) if found else None
            if name is None:
                found = re.search(r"""(?:hx-post|hx-get|action)="\{% url '([^']+)'""", attrs)
                name = found.group(1) if found else "form"
            keys.add(f"{path.relative_to(TEMPLATES)} {name}")
    return keys


def test_every_console_form_is_listed():
    listed = {case.key for case in CASES}
    assert not listed & set(EXEMPT), "a form is both tested and exempt"
    missing = form_keys() - listed - set(EXEMPT)
    assert not missing, f"forms with no case in CASES (or a reason in EXEMPT): {sorted(missing)}"
    gone = (listed | set(EXEMPT)) - form_keys()
    assert not gone, f"listed forms the templates no longer have: {sorted(gone)}"


@pytest.fixture
def fleet(transactional_db, admin_user, tmp_path, settings):
    """What the forms' pages need: a device, a webhook, an APK release with a rollout that can
    be rolled back, a Wi-Fi config whose group has no device, a policy."""
    from apks.services import deploy, releases
    from commands.policies import services as policies
    from commands.services import create_wifi_config
    from devices.models import DeviceGroup, InstalledApp
    from devices.tests.factories import DeviceFactory
    from mdm.alerts import services as alerts

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                         "OPTIONS": {"location": str(tmp_path / "media")}}}
    group = DeviceGroup.objects.create(name="warehouse-a")
    device = DeviceFactory(group=group, alias="scanner-a1")
    uploader = releases.Uploader(actor=admin_user, user=admin_user, via="console", is_admin=True)
    made = []
    for name in ("app-v10", "app-v11"):
        copy = tmp_path / f"{name}.apk"
        shutil.copyfile(APKS / f"{name}.apk", copy)
        made.append(releases.create_release(path=copy, uploader=uploader))
    InstalledApp.objects.create(device=device, package=made[1].package, version_code=10)
    rollout = deploy.deploy_release(actor=admin_user, release=made[1], target={"all": True}, rollout={"waves": [100]}).rollout
    hook = alerts.create_webhook(actor=admin_user, name="Pager", url="https://pager.example/hook", secret="whsec_test-secret-0123456789")
    empty = DeviceGroup.objects.create(name="empty-shelf")
    wifi = create_wifi_config(actor=admin_user, name="Shelf", ssid="Shelf", security="open", group=empty)
    policy = policies.create_policy(actor=admin_user, name="Kiosk", items={"kiosk": {"package": "com.example.kiosk"}})
    return {"device": device.pk, "hook": hook.pk, "release": made[1].pk, "rollout": rollout.pk, "wifi": wifi.pk, "policy": policy.pk}


# Sets the values as a script would (past maxlength, into hidden fields), switches the browser's
# own checks off, and fires the events a person's typing would (a toggle shows its fields).
FILL = """([form, values, events]) => {
  const element = document.querySelector(form);
  element.noValidate = true;
  for (const [name, value] of Object.entries(values)) {
    const inputs = [...element.querySelectorAll(`[name="${name}"]`)];
    if (!inputs.length) throw new Error(`no field ${name} in ${form}`);
    const input = inputs.find((i) => i.type === "radio" ? i.value === value : true);
    if (input.type === "checkbox") input.checked = value;
    else if (input.type === "radio") input.checked = true;
    else input.value = value;
    if (!events) continue;
    input.dispatchEvent(new Event("input", {bubbles: true}));
    input.dispatchEvent(new Event("change", {bubbles: true}));
  }
}"""

# The message, visible, in the box of the field it is about (its label, fieldset or error slot),
# or in `near` for a form that answers elsewhere.
BESIDE = """([form, name, near, message]) => {
  const box = near ? document.querySelector(near)
    : document.querySelector(`${form} [name="${name}"]`)?.closest("label, fieldset, .duration, .freeze-row");
  if (!box) return false;
  return [...box.querySelectorAll(".error, .errors")].some((e) => e.textContent.includes(message) && e.offsetParent !== null);
}"""

# What no message may look like: an API field name in front, a Python repr or literal.
DEVELOPER_TERMS = re.compile(r"(^|\s)[a-z]+([._][a-z0-9]+)+:|\[\s*'|\{\s*'|\bTrue\b|\bNone\b|\bFalse\b")


def check(page, url: str, case: Case, ids: dict) -> str | None:
    path, form, near = (text.format(**ids) for text in (case.path, case.form, case.near))
    answer = (case.answer or case.path.split("?")[0]).format(**ids)
    page.goto(url + path)
    if case.open:
        page.click(case.open)
    page.wait_for_selector(form)
    # A form loaded by htmx (the drawer, the preset editor) is wired when it settles, 20 ms after.
    page.wait_for_function("(form) => !document.querySelector(form).closest('.htmx-added')", arg=form)
    page.evaluate("window.notReloaded = true")
    page.evaluate(FILL, [form, case.values, case.events])
    with page.expect_response(lambda r: answer in r.url and r.request.headers.get("hx-request") == "true") as response:
        if case.send == "change":
            page.evaluate("(form) => document.querySelector(form).dispatchEvent(new Event('change', {bubbles: true}))", form)
        else:
            page.locator(form).locator("button[type=submit], button:not([type])").first.click()
    if not 400 <= response.value.status < 500:
        return f"answered {response.value.status}, not a 4xx"
    try:
        page.wait_for_function(BESIDE, arg=[form, case.field, near, case.message], timeout=5000)
    except Exception:
        return f"“{case.message}” did not appear beside {case.field or near}"
    if not page.evaluate("window.notReloaded === true"):
        return "the page was reloaded"
    if page.evaluate("(m) => document.body.innerText.split(m).length - 1", case.message) != 1:
        return f"“{case.message}” is shown more than once"
    if re.search(r"\{[#%{]", page.inner_text("body")):
        return "template syntax shows on the page"
    shown = page.locator(".error:visible, .errors:visible, .form-errors:visible").all_inner_texts()
    wrong = [text for text in shown if DEVELOPER_TERMS.search(text)]
    return f"developer terms in {wrong}" if wrong else None


@pytest.mark.browser
@pytest.mark.live
def test_every_console_form_says_what_is_wrong_beside_the_field(live_server_proc, page, admin_user, fleet):
    url = live_server_proc.url
    page.on("dialog", lambda dialog: dialog.accept())
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "htmx" in m.text.lower() else None)
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    failures = {}
    for case in CASES:
        try:
            problem = check(page, url, case, fleet)
        except Exception as exc:  # one form's failure must not hide the others'
            problem = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        if problem:
            failures[case.key] = problem
    assert failures == {}
    assert errors == []
