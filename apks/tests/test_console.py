"""The APK page: releases grouped by package with the API's filters, the uploader mount point
for admins, a release's devices (running, older, newer, missing), the agent release and what
the QR builder and the adb one-liners take from it."""

import base64
import hashlib
import html
import json
import re

import pytest

from apks.models import Release
from apks.services import releases
from apks.tests.conftest import apk
from devices.models import InstalledApp
from devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(copy_apk, admin_uploader):
    return [releases.create_release(path=copy_apk(name), uploader=admin_uploader, channel=channel)
            for name, channel in (("app-v10", "stable"), ("app-v11", "beta"), ("agent-test", "stable"))]


def test_admins_get_the_uploader_mount_point_as_the_contract_says(console_for, admin_user, catalogue):
    page = console_for(admin_user).get("/apks/").content.decode()
    mount = re.search(r'<div id="apk-uploader"([^>]*)></div>', page)
    assert mount, "no mount point"
    attrs = dict(re.findall(r'(data-[a-z]+)="([^"]*)"', mount.group(1)))
    assert attrs["data-endpoint"] == "/api/v1/uploads/" and attrs["data-channels"] == "stable,beta"
    assert len(attrs["data-csrf"]) >= 32


@pytest.mark.parametrize("persona", ["viewer_user", "operator_user"])
def test_others_read_the_page_without_the_uploader(request, console_for, catalogue, persona):
    response = console_for(request.getfixturevalue(persona)).get("/apks/")
    assert response.status_code == 200
    assert b'id="apk-uploader"' not in response.content and b"com.example.fieldapp" in response.content


def test_releases_are_grouped_by_package_newest_first(console_for, viewer_user, catalogue):
    page = console_for(viewer_user).get("/apks/").content.decode()
    assert page.index("<code>com.example.fieldapp</code>") < page.index("<code>dev.mdm.agent</code>")  # by package
    section = page[page.index("<code>com.example.fieldapp</code>"):]
    assert section.index(">1.1<") < section.index(">1.0<")


def test_the_filters_narrow_the_partial_which_refreshes_on_apk_uploaded(console_for, viewer_user, catalogue):
    response = console_for(viewer_user).get("/apks/?channel=beta", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    slots = re.findall(r'<span id="releases-\w+-errors" class="field-errors" hx-swap-oob="true"></span>', body)  # all empty
    assert len(slots) == 9 and re.sub(r"<span id=\"releases-.*?</span>", "", body).lstrip().startswith('<div id="release-list"')
    assert 'hx-trigger="apk-uploaded from:document"' in body
    assert ">1.1<" in body and ">1.0<" not in body and "dev.mdm.agent" not in body


def test_a_bad_filter_is_ignored_and_said_beside_it(console_for, viewer_user, catalogue):
    response = console_for(viewer_user).get("/apks/?version_code_min=-5")
    body = response.content.decode()
    assert response.status_code == 422 and "The filters marked above were not applied" in body
    assert re.search(r'<span id="releases-version_code_min-errors" class="field-errors"><small class="error" role="alert">'
                     r'A whole number, 0 or more.</small></span>', body)
    assert "version_code_min:" not in body
    swapped = console_for(viewer_user).get("/apks/?version_code_min=-5", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="releases-version_code_min-errors" class="field-errors" hx-swap-oob="true"><small' in swapped


def test_the_page_costs_a_bounded_number_of_queries(console_for, viewer_user, catalogue, django_assert_max_num_queries):
    client = console_for(viewer_user)
    with django_assert_max_num_queries(12):
        client.get("/apks/")


def test_a_release_shows_which_devices_run_it_an_older_or_newer_version_or_miss_it(console_for, viewer_user, catalogue):
    release = catalogue[0]  # com.example.fieldapp 10
    for alias, code in (("on-ten", 10), ("on-nine", 9), ("on-eleven", 11)):
        InstalledApp.objects.create(device=DeviceFactory(alias=alias), package=release.package, version_code=code)
    DeviceFactory(alias="without-it")
    retired = DeviceFactory(alias="retired-one")
    InstalledApp.objects.create(device=retired, package=release.package, version_code=10)
    from django.utils import timezone

    type(retired).objects.filter(pk=retired.pk).update(deleted_at=timezone.now())
    page = console_for(viewer_user).get(f"/apks/{release.id}/").content.decode()

    def group(key):
        block = page[page.index(f'id="coverage-{key}"'):]
        return block[:block.index("</details>")]

    assert "on-ten" in group("running") and "on-nine" in group("older") and "on-eleven" in group("newer")
    assert "without-it" in group("missing") and "on-ten" not in group("missing")
    assert "retired-one" not in page
    assert release.sha256 in page and release.signer_sha256 in page


def test_an_admin_marks_the_agent_release(console_for, admin_user, catalogue):
    from mdm.models import AuditEvent

    agent = catalogue[2]
    response = console_for(admin_user).post(f"/apks/{agent.id}/agent/")
    assert response.status_code == 200 and b"This is the agent release" in response.content
    assert Release.objects.get(agent=True) == agent
    assert AuditEvent.objects.filter(action="apk.mark_agent").exists()


@pytest.mark.parametrize("persona", ["viewer_user", "operator_user"])
def test_only_admins_mark_it(request, console_for, catalogue, persona):
    response = console_for(request.getfixturevalue(persona)).post(f"/apks/{catalogue[2].id}/agent/")
    assert response.status_code == 403 and not Release.objects.filter(agent=True).exists()


def test_the_agent_release_is_downloadable_without_credentials_and_nothing_else_is(client, admin_user, catalogue):
    agent, other = catalogue[2], catalogue[0]
    assert client.get(f"/apks/agent/{agent.id}.apk").status_code == 404  # not marked yet
    releases.mark_agent_release(actor=admin_user, release=agent)
    response = client.get(f"/apks/agent/{agent.id}.apk")
    assert response.status_code == 200 and b"".join(response.streaming_content) == apk("agent-test").read_bytes()
    assert client.get(f"/apks/agent/{other.id}.apk").status_code == 404


def _b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def test_the_qr_builder_and_one_liners_use_the_agent_release(console_for, admin_user, catalogue, settings):
    from enrollment.services import keys

    agent = catalogue[2]
    releases.mark_agent_release(actor=admin_user, release=agent)
    url = f"{settings.PUBLIC_BASE_URL}/apks/agent/{agent.id}.apk"
    client = console_for(admin_user)
    assert url in client.get("/enrollment/").content.decode()
    key = keys.create_enrollment_key(actor=admin_user, name="qr").raw
    response = client.post("/enrollment/qr/", {"enroll_key": key, "server_url": "https://mdm.example.com", "apk_url": url,
                                               "admin_component": "dev.mdm.agent/.AdminReceiver", "wifi_security": "WPA"})
    assert response.status_code == 200, response.content[:500]
    payload = json.loads(html.unescape(re.search(r'<pre class="payload" id="qr-payload">(.*?)</pre>', response.content.decode(), re.S).group(1)))
    extra = "android.app.extra."
    assert payload[extra + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION"] == url
    assert payload[extra + "PROVISIONING_DEVICE_ADMIN_PACKAGE_CHECKSUM"] == _b64url_sha256(apk("agent-test").read_bytes())
    script = client.post("/enrollment/one-liner/", {"enroll_key": key, "server_url": "https://mdm.example.com", "apk_url": url})
    assert script.status_code == 200, script.content[:300]
    fetched = client.get(f"/enrollment/provision.sh?apk_url={url}", HTTP_X_ADMIN_KEY=key).content.decode()
    assert f"{agent.sha256}  $APK\" | sha256sum -c" in fetched
    other = client.get("/enrollment/provision.sh?apk_url=https://elsewhere.example/agent.apk", HTTP_X_ADMIN_KEY=key).content.decode()
    assert "sha256sum" not in other
