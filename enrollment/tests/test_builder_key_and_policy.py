"""The QR builder's and the one-liner's key fields: the key just created can be copied and handed
to both forms, and a key typed there is looked up (by its hash) to say which key it is and which
policy the devices enrolled with it get, the same policy the server then assigns."""

import re

import pytest

from commands.policies import resolve
from commands.policies import services as policies
from devices.models import Device, DeviceGroup
from enrollment.models import EnrollmentKey

pytestmark = pytest.mark.django_db

KIOSK = {"kiosk": {"package": "com.example.kiosk"}}


@pytest.fixture
def admin_console(console_for, admin_user):
    return console_for(admin_user)


@pytest.fixture
def shops(db):
    return DeviceGroup.objects.create(name="shops")


def _info(client, raw, form="qr"):
    return client.post(f"/enrollment/keys/info/{form}/", {"enroll_key": raw})


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


def test_a_key_pinning_a_group_with_a_policy_names_the_key_the_group_and_that_policy(admin_console, admin_user, make_key, shops):
    shop_policy = policies.create_policy(actor=admin_user, name="Shop kiosk", items=KIOSK)
    policies.assign_policy(actor=admin_user, policy=shop_policy, target={"group": "shops"})
    policies.assign_policy(actor=admin_user, policy=policies.create_policy(actor=admin_user, name="Base", items={}), target={"all": True})
    raw = make_key(name="Shop rollout", group=shops)
    response = _info(admin_console, raw)
    assert response.status_code == 200
    text = _text(response)
    assert "Key Shop rollout active" in text and "pins the group shops" in text
    assert f"Shop kiosk version {shop_policy.version} (assigned to the group shops)" in text
    assert "Base" not in text
    assert 'id="qr-key-info"' in response.content.decode()


def test_without_a_policy_of_its_group_the_fleet_default_is_named(admin_console, admin_user, make_key, shops):
    base = policies.create_policy(actor=admin_user, name="Base", items={})
    policies.assign_policy(actor=admin_user, policy=base, target={"all": True})
    text = _text(_info(admin_console, make_key(group=shops), form="oneliner"))
    assert f"Base version {base.version} (the fleet default: the group shops has no policy of its own)" in text
    assert "the fleet default" in _text(_info(admin_console, make_key(name="no group")))


def test_with_no_policy_anywhere_it_says_none(admin_console, make_key, shops):
    assert "none: neither the group shops nor the fleet has a policy assigned" in _text(_info(admin_console, make_key(group=shops)))
    assert "none: the key pins no group and the fleet has no default policy" in _text(_info(admin_console, make_key(name="bare")))


def test_the_policy_named_is_the_one_the_server_gives_the_device_that_enrolls(admin_console, admin_user, make_key, shops, enroll):
    shop_policy = policies.create_policy(actor=admin_user, name="Shop kiosk", items=KIOSK)
    policies.assign_policy(actor=admin_user, policy=shop_policy, target={"group": "shops"})
    raw = make_key(group=shops)
    assert "Shop kiosk" in _text(_info(admin_console, raw))
    assert enroll(raw, hardware_id="SHOP-1").status_code == 201
    device = Device.objects.get(hardware_id="SHOP-1")
    assert resolve.current_for_device(device.pk) == (shop_policy.pk, shop_policy.version)


def test_an_unknown_key_and_a_revoked_one_say_so(admin_console, admin_user, make_key):
    assert "No enrollment key matches" in _text(_info(admin_console, "mdmk_not-a-key"))
    assert "No enrollment key matches" in _text(_info(admin_console, "x" * 5000))
    raw = make_key(name="Old batch")
    EnrollmentKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    text = _text(_info(admin_console, raw))
    assert "Key Old batch revoked" in text and "Devices cannot enroll with it: it is revoked." in text


def test_a_blank_key_shows_nothing(admin_console):
    response = _info(admin_console, "   ")
    assert response.status_code == 200 and _text(response) == ""


def test_an_unknown_form_is_a_404(admin_console, key):
    assert _info(admin_console, key, form="elsewhere").status_code == 404


def test_the_key_lookup_is_for_admins_only(client, console_for, viewer_user, operator_user, key):
    anonymous = _info(client, key)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    for user in (viewer_user, operator_user):
        response = _info(console_for(user), key)
        assert response.status_code == 403 and "Key" not in _text(response)


def test_the_key_lookup_takes_no_key_in_its_url(admin_console, key):
    """A GET would put the fleet secret into URLs, browser history and proxies' access logs."""
    assert admin_console.get(f"/enrollment/keys/info/qr/?enroll_key={key}").status_code == 405


def test_the_builders_key_fields_ask_the_lookup_as_they_are_typed(admin_console):
    html = admin_console.get("/enrollment/").content.decode()
    for form in ("qr", "oneliner"):
        field = re.search(rf'<input[^>]*hx-post="/enrollment/keys/info/{form}/"[^>]*>', html).group(0)
        assert 'name="enroll_key"' in field and f'hx-target="#{form}-key-info"' in field and 'hx-params="enroll_key"' in field
        assert f'id="{form}-key-info"' in html
    assert "Keys are stored hashed, so the console cannot list the existing ones" in html


def test_a_created_key_can_be_copied_and_used_in_both_forms(admin_console, admin_user, shops):
    policies.assign_policy(actor=admin_user, policy=policies.create_policy(actor=admin_user, name="Shop kiosk", items=KIOSK),
                           target={"group": "shops"})
    response = admin_console.post("/enrollment/keys/", {"name": "Store rollout", "group": shops.pk})
    html = response.content.decode()
    raw = re.search(r'<code id="new-key"[^>]*>([^<]+)</code>', html).group(1)
    assert re.search(r'<button[^>]*data-copy="new-key"[^>]*>Copy</button>', html)
    assert re.search(r'<button[^>]*data-use-key="new-key"[^>]*>Use in the QR builder and the one-liner</button>', html)
    assert "Shop kiosk" in _text(response)  # the new key's policy, said at once
    assert html.count('id="key-form"') == 1 and raw.startswith("mdmk_")


def test_a_form_built_again_shows_what_its_key_is(admin_console, make_key, shops):
    raw = make_key(name="Shop rollout", group=shops)
    response = admin_console.post("/enrollment/qr/", {"enroll_key": raw, "server_url": "https://mdm.example.com", "apk_url": ""})
    assert response.status_code == 422
    assert "Shop rollout" in _text(response) and "pins the group shops" in _text(response)


def test_the_policy_is_linked_to_the_policy_pages_when_the_console_has_them(admin_console, admin_user, make_key, shops, monkeypatch):
    from enrollment.templatetags import enrollment_tags

    policy = policies.create_policy(actor=admin_user, name="Shop kiosk", items=KIOSK)
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    raw = make_key(group=shops)
    monkeypatch.setattr(enrollment_tags, "POLICY_PAGES", ("no:such-page",))
    monkeypatch.setattr(enrollment_tags, "POLICY_PAGE", ("no:such-page",))
    html = _info(admin_console, raw).content.decode()
    assert "Policies are assigned with <code>/api/v1/policies</code>" in html and "<a " not in html
    # Stand-ins that resolve (the pages' real names are commands:policies and commands:policy_detail).
    monkeypatch.setattr(enrollment_tags, "POLICY_PAGES", ("no:such-page", "enrollment:index"))
    monkeypatch.setattr(enrollment_tags, "POLICY_PAGE", ("enrollment:revoke_key",))
    html = _info(admin_console, raw).content.decode()
    assert '<a href="/enrollment/">Policies</a>' in html
    assert f'<a href="/enrollment/keys/{policy.pk}/revoke/">Shop kiosk</a>' in html
