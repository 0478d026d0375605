"""The QR provisioning builder: validates the APK (reachable, checksum) before it shows a QR
code, and the QR decodes back to the payload (zbarimg from Debian's zbar-tools)."""

import base64
import functools
import hashlib
import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest

from enrollment import provisioning

pytestmark = pytest.mark.django_db

APKS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "apks"
EXTRA = "android.app.extra."


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """The fixture server is on the loopback, which the QR builder refuses by default (SSRF,
    enrollment/tests/test_qr_ssrf.py): these tests allow it, as an operator can a network."""
    settings.QR_APK_ALLOWED_NETWORKS = "127.0.0.0/8"


@pytest.fixture(scope="module")
def apk_server():
    """The fixture APKs over HTTP on the loopback, as a release server would serve them."""
    handler = functools.partial(QuietHandler, directory=str(APKS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _checksum(name: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256((APKS / name).read_bytes()).digest()).decode().rstrip("=")


@pytest.fixture
def admin_console(client, admin_user):
    client.force_login(admin_user)
    return client


def _form(key, apk_server, **overrides):
    data = {
        "enroll_key": key,
        "server_url": "https://mdm.example.com",
        "apk_url": f"{apk_server}/agent-test.apk",
        "admin_component": "dev.mdm.agent/.AdminReceiver",
        "wifi_security": "WPA",
    }
    data.update(overrides)
    return data


def _payload_from(html: str) -> dict:
    import html as html_lib
    import re

    return json.loads(html_lib.unescape(re.search(r'<pre class="payload" id="qr-payload">(.*?)</pre>', html, re.S).group(1)))


def test_the_server_computes_the_package_checksum(admin_console, key, apk_server):
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server))
    assert response.status_code == 200
    payload = _payload_from(response.content.decode())
    assert payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_PACKAGE_CHECKSUM"] == _checksum("agent-test.apk")
    assert payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION"] == f"{apk_server}/agent-test.apk"
    assert payload[EXTRA + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"] == {"server_url": "https://mdm.example.com", "enroll_key": key}


def test_a_wrong_checksum_is_rejected_and_no_qr_is_shown(admin_console, key, apk_server):
    wrong = _checksum("agent-test-v2.apk")
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server, package_checksum=wrong))
    html = response.content.decode()
    assert response.status_code == 422
    assert "Does not match the APK" in html and _checksum("agent-test.apk") in html
    assert "<svg" not in html


def test_the_right_checksum_in_standard_base64_is_accepted(admin_console, key, apk_server):
    digest = base64.b64encode(hashlib.sha256((APKS / "agent-test.apk").read_bytes()).digest()).decode()
    assert admin_console.post("/enrollment/qr/", _form(key, apk_server, package_checksum=digest)).status_code == 200


def test_a_wrong_signature_checksum_is_rejected(admin_console, key, apk_server):
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server, signature_checksum="A" * 43))
    assert response.status_code == 422 and "signing certificate" in response.content.decode()


def test_the_signature_checksum_can_replace_the_package_checksum(admin_console, key, apk_server):
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server, use_signature_checksum="on"))
    payload = _payload_from(response.content.decode())
    assert EXTRA + "PROVISIONING_DEVICE_ADMIN_PACKAGE_CHECKSUM" not in payload
    assert len(payload[EXTRA + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM"]) == 43


def test_an_unreachable_apk_is_rejected(admin_console, key, apk_server):
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server, apk_url=f"{apk_server}/missing.apk"))
    assert response.status_code == 422 and "HTTP 404" in response.content.decode()


def test_something_that_is_not_an_apk_is_rejected(admin_console, key, apk_server):
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server, apk_url=f"{apk_server}/build.sh"))
    assert response.status_code == 422 and "not a zip" in response.content.decode()


def test_an_apk_over_the_size_cap_is_rejected(admin_console, key, apk_server, settings):
    settings.QR_APK_MAX_BYTES = 1000
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server))
    assert response.status_code == 422 and "larger than" in response.content.decode()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"enroll_key": "mdmk_nope"}, "enroll_key"),
        ({"apk_url": ""}, "apk_url"),
        ({"admin_component": "no-slash"}, "admin_component"),
        ({"wifi_ssid": "Office", "wifi_security": "WPA", "wifi_password": ""}, "wifi_password"),
        ({"wifi_ssid": "Corp", "wifi_security": "EAP"}, "eap_method"),
        ({"locale": "english"}, "locale"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ],
)
def test_required_and_malformed_fields_are_refused(admin_console, key, apk_server, overrides, field):
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server, **overrides))
    assert response.status_code == 422
    assert "<svg" not in response.content.decode()


def test_wifi_eap_locale_and_flags_reach_the_payload(admin_console, key, apk_server):
    response = admin_console.post(
        "/enrollment/qr/",
        _form(
            key, apk_server, wifi_ssid="Corp", wifi_security="EAP", wifi_password="s3cret", wifi_hidden="on",
            eap_method="PEAP", eap_phase2="MSCHAPV2", eap_identity="alice", eap_domain="corp.example",
            locale="de_DE", time_zone="Europe/Berlin", skip_encryption="on", leave_system_apps="on",
        ),
    )
    payload = _payload_from(response.content.decode())
    assert payload[EXTRA + "PROVISIONING_WIFI_SSID"] == "Corp"
    assert payload[EXTRA + "PROVISIONING_WIFI_SECURITY_TYPE"] == "EAP"
    assert payload[EXTRA + "PROVISIONING_WIFI_PASSWORD"] == "s3cret"
    assert payload[EXTRA + "PROVISIONING_WIFI_HIDDEN"] is True
    assert payload[EXTRA + "PROVISIONING_WIFI_EAP_METHOD"] == "PEAP"
    assert payload[EXTRA + "PROVISIONING_WIFI_PHASE2_AUTH"] == "MSCHAPV2"
    assert payload[EXTRA + "PROVISIONING_WIFI_IDENTITY"] == "alice"
    assert payload[EXTRA + "PROVISIONING_WIFI_DOMAIN"] == "corp.example"
    assert payload[EXTRA + "PROVISIONING_LOCALE"] == "de_DE"
    assert payload[EXTRA + "PROVISIONING_TIME_ZONE"] == "Europe/Berlin"
    assert payload[EXTRA + "PROVISIONING_SKIP_ENCRYPTION"] is True
    assert payload[EXTRA + "PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED"] is True


def test_the_qr_code_decodes_back_to_the_payload(admin_console, key, apk_server, tmp_path):
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server, wifi_ssid="Dépôt", wifi_password="pw"))
    payload = _payload_from(response.content.decode())
    png = tmp_path / "qr.png"
    png.write_bytes(provisioning.qr_png_bytes(payload))
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sbinary", str(png)], capture_output=True, check=True).stdout
    assert json.loads(decoded.decode("utf-8")) == payload
    # and the PNG the page offers is the same code
    import re

    data_uri = re.search(r'href="data:image/png;base64,([^"]+)"', response.content.decode()).group(1)
    page_png = tmp_path / "page.png"
    page_png.write_bytes(base64.b64decode(data_uri))
    decoded_page = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sbinary", str(page_png)], capture_output=True, check=True).stdout
    assert json.loads(decoded_page.decode("utf-8")) == payload


def test_only_admins_build_qr_codes(client, operator_user, key, apk_server):
    client.force_login(operator_user)
    assert client.post("/enrollment/qr/", _form(key, apk_server)).status_code == 403
    client.logout()
    assert client.post("/enrollment/qr/", _form(key, apk_server)).status_code == 302


def test_a_kiosk_app_goes_into_the_admin_extras_the_agent_reads(admin_console, key, apk_server):
    response = admin_console.post("/enrollment/qr/", _form(key, apk_server, kiosk_package="com.example.kiosk"))
    assert response.status_code == 200
    extras = _payload_from(response.content.decode())[EXTRA + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    assert extras == {"server_url": "https://mdm.example.com", "enroll_key": key, "kiosk_package": "com.example.kiosk"}
    refused = admin_console.post("/enrollment/qr/", _form(key, apk_server, kiosk_package="not a package"))
    assert refused.status_code == 422 and "A package name like" in refused.content.decode()


def test_the_one_liner_checksums_an_apk_the_server_does_not_know(admin_console, key, apk_server):
    """Not the marked release nor the configured URL: the console downloads it once (the QR
    builder's SSRF rules) and the one-liner carries its SHA-256 for the script to verify."""
    response = admin_console.post("/enrollment/one-liner/", {"enroll_key": key, "server_url": "https://mdm.example.com",
                                                             "apk_url": f"{apk_server}/agent-test.apk"})
    assert response.status_code == 200
    assert "sha256=" + hashlib.sha256((APKS / "agent-test.apk").read_bytes()).hexdigest() in response.content.decode()
    missing = admin_console.post("/enrollment/one-liner/", {"enroll_key": key, "server_url": "https://mdm.example.com",
                                                            "apk_url": f"{apk_server}/missing.apk"})
    assert missing.status_code == 422 and "HTTP 404" in missing.content.decode()
