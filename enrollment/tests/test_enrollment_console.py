"""The Enrollment page: keys shown once, revocation, one-liners and their script download,
presets; every action is admin-only."""

import pytest

from enrollment.models import BloatwarePreset, EnrollmentKey, TweakPreset, hash_key
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_console(client, admin_user):
    client.force_login(admin_user)
    return client


def test_every_signed_in_role_sees_the_keys_only_admins_see_the_builders(client, viewer_user, admin_user, key):
    client.force_login(viewer_user)
    html = client.get("/enrollment/").content.decode()
    assert "bench" in html and "QR provisioning" not in html
    client.force_login(admin_user)
    html = client.get("/enrollment/").content.decode()
    assert "QR provisioning" in html and "adb one-liner" in html and "Google consumer apps" in html


def test_anonymous_visitors_are_sent_to_sign_in(client):
    assert client.get("/enrollment/").status_code == 302


def test_a_created_key_is_shown_once_and_stored_hashed(admin_console):
    response = admin_console.post("/enrollment/keys/", {"name": "Store rollout", "max_uses": "50", "expires_in_days": "7"})
    html = response.content.decode()
    key = EnrollmentKey.objects.get(name="Store rollout")
    import re

    raw = re.search(r'<code id="new-key"[^>]*>([^<]+)</code>', html).group(1)
    assert key.key_hash == hash_key(raw) and raw not in key.key_hash
    assert key.max_uses == 50 and key.expires_at is not None
    assert raw not in admin_console.get("/enrollment/").content.decode()
    assert AuditEvent.objects.filter(action="enrollment_key.create").exists()


def test_a_key_needs_a_name(admin_console):
    assert admin_console.post("/enrollment/keys/", {"name": ""}).status_code == 422


def test_only_admins_create_and_revoke_keys(client, operator_user, key):
    client.force_login(operator_user)
    assert client.post("/enrollment/keys/", {"name": "x"}).status_code == 403
    assert client.post(f"/enrollment/keys/{EnrollmentKey.objects.get().pk}/revoke/").status_code == 403


def test_a_revoked_key_stops_enrolling(admin_console, key, enroll):
    admin_console.post(f"/enrollment/keys/{EnrollmentKey.objects.get().pk}/revoke/")
    assert EnrollmentKey.objects.get().revoked_at is not None
    assert enroll(key).json()["code"] == "key_invalid"


def test_the_one_liner_generator_needs_a_usable_key(admin_console):
    response = admin_console.post("/enrollment/one-liner/", {"enroll_key": "mdmk_nope", "server_url": "https://x.test", "apk_url": "https://x.test/a.apk"})
    assert response.status_code == 422 and "Unknown, revoked" in response.content.decode()


def test_the_one_liners_fetch_a_script_with_the_chosen_presets(admin_console, client, key, settings):
    # The configured agent URL and its published checksum: the console need not download it.
    settings.AGENT_APK_URL, settings.AGENT_APK_SHA256 = "https://cdn.example.com/agent.apk", "ab" * 32
    bloat = BloatwarePreset.objects.get(name="Google consumer apps")
    tweak = TweakPreset.objects.get(name="Kiosk display")
    response = admin_console.post(
        "/enrollment/one-liner/",
        {"enroll_key": key, "server_url": "https://mdm.example.com", "apk_url": "https://cdn.example.com/agent.apk", "bloatware": [bloat.pk], "tweaks": [tweak.pk]},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "curl -fsSL -H &#x27;X-Admin-Key: " in html and "iwr -UseBasicParsing" in html and f"sha256={'ab' * 32}" in html
    script = client.get(
        "/enrollment/provision.sh", {"apk_url": "https://cdn.example.com/agent.apk", "bloatware": str(bloat.pk), "tweaks": str(tweak.pk)}, HTTP_X_ADMIN_KEY=key
    )
    body = script.content.decode()
    assert script.status_code == 200 and body.startswith("#!/usr/bin/env bash")
    assert f"echo \"{'ab' * 32}  $APK\" | sha256sum -c" in body
    assert "dpm set-device-owner" in body and "dev.mdm.agent/.AdminReceiver" in body
    assert "pm uninstall --user 0" in body and "com.google.android.youtube" in body
    # Quoted twice: once for bash, once for the device's shell, which adb hands the words joined.
    assert "settings put global stay_on_while_plugged_in \"'7'\"" in body
    assert "pm grant" in body and "appops set" in body and key in body
    assert "am broadcast -a dev.mdm.agent.CONFIGURE -n dev.mdm.agent/.ConfigureReceiver" in body
    ps = client.get("/enrollment/provision.ps1", {"apk_url": "https://cdn.example.com/agent.apk"}, HTTP_X_ADMIN_KEY=key).content.decode()
    assert "set-device-owner" in ps and "Invoke-WebRequest" in ps and "pm uninstall" not in ps


def test_a_script_for_an_apk_without_a_known_checksum_installs_nothing(client, key):
    """Neither the registry, the configuration nor the one-liner (sha256=) knows the APK's
    checksum: the script served says so and stops before it touches the device."""
    body = client.get("/enrollment/provision.sh", {"apk_url": "https://elsewhere.example/agent.apk"}, HTTP_X_ADMIN_KEY=key).content.decode()
    assert "no SHA-256 is known" in body and "adb" in body
    assert '"${ADB[@]}" install' not in body and "set-device-owner" not in body and "am broadcast" not in body
    ps = client.get("/enrollment/provision.ps1", {"apk_url": "https://elsewhere.example/agent.apk"}, HTTP_X_ADMIN_KEY=key).content.decode()
    assert "no SHA-256 is known" in ps and "Adb install" not in ps


def test_a_checksum_that_contradicts_the_configured_one_is_refused(client, key, settings):
    settings.AGENT_APK_URL, settings.AGENT_APK_SHA256 = "https://cdn.example.com/agent.apk", "ab" * 32
    params = {"apk_url": "https://cdn.example.com/agent.apk", "sha256": "cd" * 32}
    response = client.get("/enrollment/provision.sh", params, HTTP_X_ADMIN_KEY=key)
    assert response.status_code == 400 and "does not match the published checksum" in response.json()["detail"]
    assert client.get("/enrollment/provision.sh", {**params, "sha256": "xyz"}, HTTP_X_ADMIN_KEY=key).status_code == 400
    assert client.get("/enrollment/provision.sh", {**params, "sha256": "", "kiosk": "not a package"}, HTTP_X_ADMIN_KEY=key).status_code == 400


def test_the_bash_script_is_valid_shell(client, key, tmp_path):
    import subprocess

    params = {"apk_url": "https://x.test/a.apk", "sha256": "ab" * 32, "bloatware": "1,2", "tweaks": "1,2,3", "kiosk": "com.example.kiosk"}
    body = client.get("/enrollment/provision.sh", params, HTTP_X_ADMIN_KEY=key).content
    path = tmp_path / "p.sh"
    path.write_bytes(body)
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_the_script_download_needs_a_usable_key(client, key):
    assert client.get("/enrollment/provision.sh", {"apk_url": "https://x.test/a.apk"}).status_code == 401
    response = client.get("/enrollment/provision.sh", {"apk_url": "https://x.test/a.apk"}, HTTP_X_ADMIN_KEY=key + "x")
    assert response.status_code == 401 and response.json()["code"] == "key_invalid"
    assert client.get("/enrollment/provision.sh", {"apk_url": "ftp://x"}, HTTP_X_ADMIN_KEY=key).status_code == 400


def test_admins_edit_presets_and_bad_lines_are_refused(admin_console, client, viewer_user):
    preset = BloatwarePreset.objects.get(name="Samsung extras")
    url = f"/enrollment/presets/bloatware/{preset.pk}/"
    assert admin_console.get(url).status_code == 200
    assert admin_console.post(url, {"name": "Samsung", "packages": "com.samsung.a\nnot a package"}).status_code == 422
    assert BloatwarePreset.objects.get(pk=preset.pk).name == "Samsung extras"  # refused
    response = admin_console.post(url, {"name": "Samsung", "packages": "com.samsung.a\ncom.samsung.b"})
    assert response.status_code == 204
    assert BloatwarePreset.objects.get(pk=preset.pk).packages == ["com.samsung.a", "com.samsung.b"]
    new = admin_console.post("/enrollment/presets/tweaks/new/", {"name": "Dim", "settings": "system screen_brightness 40"})
    assert new.status_code == 204
    assert TweakPreset.objects.get(name="Dim").settings == [{"namespace": "system", "key": "screen_brightness", "value": "40"}]
    assert admin_console.post("/enrollment/presets/tweaks/new/", {"name": "Bad", "settings": "kernel x y"}).status_code == 422
    assert not TweakPreset.objects.filter(name="Bad").exists()
    taken = admin_console.post("/enrollment/presets/tweaks/new/", {"name": "Dim", "settings": "system screen_brightness 50"})
    assert taken.status_code == 422 and "Another preset has this name." in taken.content.decode()  # not a 500
    assert admin_console.post(f"/enrollment/presets/tweaks/{TweakPreset.objects.get(name='Dim').pk}/",
                              {"name": "Dim", "settings": "system screen_brightness 50"}).status_code == 204  # its own name
    client.force_login(viewer_user)
    assert client.post(url, {"name": "x", "packages": "a.b"}).status_code == 403


def test_presets_are_seeded():
    assert BloatwarePreset.objects.count() >= 3 and TweakPreset.objects.count() >= 3


def test_the_powershell_script_makes_the_same_device_calls_as_the_bash_one(client, key):
    """No PowerShell is installable here (not in Debian, PyPI or npm), so its script is checked by
    its text: the same device commands, the same skips, and nothing that would close the window
    that ran it through iex."""
    params = {"apk_url": "https://x.test/a.apk", "sha256": "ab" * 32, "bloatware": "1", "tweaks": "1", "kiosk": "com.example.kiosk"}
    bash = client.get("/enrollment/provision.sh", params, HTTP_X_ADMIN_KEY=key).content.decode()
    ps = client.get("/enrollment/provision.ps1", params, HTTP_X_ADMIN_KEY=key).content.decode()
    for call in ("pm path", "sha256sum", "install -r -g", "dpm list-owners", "dpm set-device-owner", "is already set", "pm grant",
                 "appops set", "GET_USAGE_STATS", "cmd deviceidle whitelist", "pm uninstall --user 0", "settings put",
                 "am broadcast -a dev.mdm.agent.CONFIGURE -n dev.mdm.agent/.ConfigureReceiver --include-stopped-packages",
                 "--es kiosk_package com.example.kiosk", "logcat -d -t 200 -s mdm-agent", "provision.status", "hardware_id="):
        assert call in bash and call in ps, call
    assert "Get-FileHash -Algorithm SHA256" in ps and "'" + "ab" * 32 + "'" in ps
    import re

    code = "\n".join(line for line in ps.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"\bexit\b", code) and "Invoke-MdmProvisioning" in ps
    assert "set -e" not in bash.replace("no -e", "")
