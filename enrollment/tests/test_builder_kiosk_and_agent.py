"""The QR builder's and the one-liner's other choices: the kiosk field offers the packages of the
APK registry and of device inventories and says where the lasting kiosk comes from; the agent
release of the APK registry fills in the APK URL and its checksums; a form answered 422 is marked
to be swapped in place; the on-screen QR code scales into its box."""

import base64
import hashlib
import html as html_lib
import json
import re
import shutil
from pathlib import Path

import pytest

from enrollment import provisioning

pytestmark = pytest.mark.django_db

APKS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "apks"
EXTRA = "android.app.extra."


@pytest.fixture(autouse=True)
def storage_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                         "OPTIONS": {"location": str(tmp_path / "media")}}}
    settings.APK_UPLOAD_DIR = tmp_path / "uploads"


@pytest.fixture
def upload(admin_user, tmp_path):
    """upload(name) -> the release of tests/fixtures/apks/<name>.apk in the registry."""
    from apks.services import releases

    def create(name):
        copy = tmp_path / f"{name}.apk"
        shutil.copyfile(APKS / f"{name}.apk", copy)
        uploader = releases.Uploader(actor=admin_user, user=admin_user, via="console", is_admin=True)
        return releases.create_release(path=copy, uploader=uploader)

    return create


@pytest.fixture
def agent_release(upload, admin_user):
    from apks.services import releases

    return releases.mark_agent_release(actor=admin_user, release=upload("agent-test"))


@pytest.fixture
def admin_console(console_for, admin_user):
    return console_for(admin_user)


@pytest.fixture
def no_download(monkeypatch):
    """The APK of the agent release is never downloaded: the registry knows its checksums."""

    def refuse(url):
        raise AssertionError(f"downloaded {url}")

    monkeypatch.setattr(provisioning, "fetch_apk", refuse)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def _value(html: str, form_id: str, name: str) -> str:
    form = re.search(rf'<div id="{form_id}">.*?</form>', html, re.S).group(0)
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', form).group(0)
    value = re.search(r'value="([^"]*)"', found)
    return html_lib.unescape(value.group(1)) if value else ""


def _payload(html: str) -> dict:
    return json.loads(html_lib.unescape(re.search(r'<pre class="payload" id="qr-payload">(.*?)</pre>', html, re.S).group(1)))


# --- Kiosk choices ----------------------------------------------------------------------------


def test_the_kiosk_fields_offer_registry_and_inventory_packages_but_not_the_agent_or_system_apps(admin_console, upload, agent_release):
    from devices.models import InstalledApp
    from devices.tests.factories import DeviceFactory

    upload("app-v10")  # com.example.fieldapp
    device = DeviceFactory()
    InstalledApp.objects.create(device=device, package="com.example.signage", version_name="3.1")
    InstalledApp.objects.create(device=device, package="com.example.fieldapp", version_name="1.0")
    InstalledApp.objects.create(device=device, package="com.android.settings", system=True)
    html = admin_console.get("/enrollment/").content.decode()
    datalist = re.search(r'<datalist id="kiosk-packages">(.*?)</datalist>', html, re.S).group(1)
    options = dict(re.findall(r'<option value="([^"]+)" label="([^"]*)">', datalist))
    assert options == {"com.example.fieldapp": "APK registry, on devices", "com.example.signage": "on devices"}
    assert len(re.findall(r'<input[^>]*name="kiosk_package"[^>]*list="kiosk-packages"', html)) == 2


def test_the_kiosk_choices_read_a_bounded_sample_of_inventories(admin_console, django_assert_max_num_queries):
    from devices.models import InstalledApp
    from devices.tests.factories import DeviceFactory

    from enrollment import selectors

    for n in range(5):
        InstalledApp.objects.create(device=DeviceFactory(), package=f"com.example.app{n}")
    with django_assert_max_num_queries(2):  # the registry's packages, one inventory query
        assert [p for p, _ in selectors.kiosk_packages()] == [f"com.example.app{n}" for n in range(5)]


def test_the_kiosk_note_says_the_lasting_kiosk_is_the_policys(admin_console):
    text = re.sub(r"\s+", " ", admin_console.get("/enrollment/").content.decode())
    assert text.count("the lasting kiosk (lock task, home screen, relaunch) is the <strong>kiosk item of the device's policy</strong>") == 2
    assert "until the device's first policy arrives" in text


# --- The agent release ------------------------------------------------------------------------


def test_the_qr_builder_fills_in_the_agent_release_and_its_checksums(admin_console, agent_release, settings):
    html = admin_console.get("/enrollment/").content.decode()
    url = f"{settings.PUBLIC_BASE_URL}/apks/agent/{agent_release.id}.apk"
    assert _value(html, "qr-builder", "apk_url") == url
    assert _value(html, "qr-builder", "package_checksum") == _b64url((APKS / "agent-test.apk").read_bytes())
    assert _value(html, "qr-builder", "signature_checksum") == provisioning.agent_apk().facts.signature_checksum
    assert len(_value(html, "qr-builder", "signature_checksum")) == 43
    assert "dev.mdm.agent 1.0.0 (1)" in html


def test_the_one_liner_fills_in_the_agent_release_and_its_sha256(admin_console, agent_release, settings):
    html = admin_console.get("/enrollment/").content.decode()
    assert _value(html, "oneliner", "apk_url") == f"{settings.PUBLIC_BASE_URL}/apks/agent/{agent_release.id}.apk"
    assert _value(html, "oneliner", "sha256") == hashlib.sha256((APKS / "agent-test.apk").read_bytes()).hexdigest()


def test_what_is_filled_in_builds_without_downloading_the_apk(admin_console, agent_release, key, no_download):
    html = admin_console.get("/enrollment/").content.decode()
    fields = ("apk_url", "package_checksum", "signature_checksum", "server_url", "admin_component")
    qr = admin_console.post("/enrollment/qr/", {**{n: _value(html, "qr-builder", n) for n in fields}, "enroll_key": key, "wifi_security": "WPA"})
    assert qr.status_code == 200, qr.content.decode()[:2000]
    payload = _payload(qr.content.decode())
    assert payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION"] == _value(html, "qr-builder", "apk_url")
    assert payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_PACKAGE_CHECKSUM"] == _b64url((APKS / "agent-test.apk").read_bytes())
    assert payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM"] == _value(html, "qr-builder", "signature_checksum")
    fields = ("apk_url", "sha256", "server_url")
    oneliner = admin_console.post("/enrollment/one-liner/", {**{n: _value(html, "oneliner", n) for n in fields}, "enroll_key": key})
    assert oneliner.status_code == 200, oneliner.content.decode()[:2000]
    assert "sha256=" + hashlib.sha256((APKS / "agent-test.apk").read_bytes()).hexdigest() in oneliner.content.decode()


def test_a_wrong_sha256_for_the_agent_release_is_refused_in_place(admin_console, agent_release, key, no_download):
    html = admin_console.get("/enrollment/").content.decode()
    response = admin_console.post("/enrollment/one-liner/", {"enroll_key": key, "server_url": "https://mdm.example.com",
                                                             "apk_url": _value(html, "oneliner", "apk_url"), "sha256": "ab" * 32})
    assert response.status_code == 422
    assert "Does not match the APK at that URL (its SHA-256 is " + agent_release.sha256 in response.content.decode()
    assert "The one-liner was not generated" in response.content.decode()
    malformed = admin_console.post("/enrollment/one-liner/", {"enroll_key": key, "server_url": "https://mdm.example.com",
                                                              "apk_url": _value(html, "oneliner", "apk_url"), "sha256": "xyz"})
    assert malformed.status_code == 422 and "64 hexadecimal digits" in malformed.content.decode()


def test_checksums_left_as_filled_in_do_not_hold_another_url(admin_console, agent_release, key, monkeypatch):
    """An admin who points the form at another APK gets that APK's checksums, not a mismatch with
    the agent release's, which were only filled in for the agent's URL."""
    other = provisioning.ApkFacts(package_checksum="B" * 43, signature_checksum="C" * 43, size=10, package="dev.mdm.agent")
    monkeypatch.setattr(provisioning, "fetch_apk", lambda url: other)
    html = admin_console.get("/enrollment/").content.decode()
    fields = ("package_checksum", "signature_checksum", "server_url", "admin_component")
    qr = admin_console.post("/enrollment/qr/", {**{n: _value(html, "qr-builder", n) for n in fields}, "enroll_key": key,
                                                "apk_url": "https://downloads.example.com/agent.apk", "wifi_security": "WPA"})
    assert qr.status_code == 200, qr.content.decode()[:2000]
    payload = _payload(qr.content.decode())
    assert payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_PACKAGE_CHECKSUM"] == "B" * 43
    assert EXTRA + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM" not in payload
    oneliner = admin_console.post("/enrollment/one-liner/", {"enroll_key": key, "server_url": "https://mdm.example.com",
                                                             "apk_url": "https://downloads.example.com/agent.apk",
                                                             "sha256": _value(html, "oneliner", "sha256")})
    assert oneliner.status_code == 200
    assert "sha256=" + base64.urlsafe_b64decode("B" * 43 + "=").hex() in oneliner.content.decode()


def test_without_an_agent_release_the_forms_say_how_to_get_one(admin_console, upload):
    html = admin_console.get("/enrollment/").content.decode()
    assert html.count("No agent release in the APK registry yet") == 2
    upload("agent-test")
    html = admin_console.get("/enrollment/").content.decode()
    assert html.count("The APK registry holds the agent, but no release is marked as the agent release") == 2
    assert _value(html, "qr-builder", "package_checksum") == ""


# --- 422 in place, and the QR box -------------------------------------------------------------


def test_every_page_asks_htmx_to_swap_422_answers_in_place(admin_console):
    import json

    html = admin_console.get("/enrollment/").content.decode()
    config = json.loads(re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', html).group(1))
    assert {"code": "422", "swap": True, "error": False} in config["responseHandling"]
    assert '<script src="/static/js/enrollment.js" defer></script>' in html


def test_the_on_screen_qr_code_has_a_view_box_and_no_fixed_size(admin_console, agent_release, key, no_download):
    html = admin_console.get("/enrollment/").content.decode()
    fields = ("apk_url", "server_url", "admin_component")
    response = admin_console.post("/enrollment/qr/", {**{n: _value(html, "qr-builder", n) for n in fields}, "enroll_key": key,
                                                      "wifi_security": "WPA"})
    svg = re.search(r'<figure class="qr-box" id="qr-code"[^>]*>\s*(<svg[^>]*>)', response.content.decode()).group(1)
    assert "viewBox=" in svg and "width=" not in svg and "height=" not in svg
