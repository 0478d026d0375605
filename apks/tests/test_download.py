"""GET /api/v1/device/apks/<apk_id>/download (PROTOCOL.md): only for a device with an open
install_apk of that APK; bytes with Content-Length, ETag, X-Checksum-SHA256 and Range; an
X-Accel-Redirect when nginx serves the files; a 302 to a pre-signed URL from S3."""

import uuid

import httpx
import pytest
from django.utils import timezone

from apks.tests.conftest import apk
from commands.models import Delivery

pytestmark = pytest.mark.django_db


def url(release) -> str:
    return f"/api/v1/device/apks/{release.id}/download"


def get(client, release, device=None, **headers):
    auth = device.auth if device is not None else {}
    return client.get(url(release), **auth, **headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_device_with_an_install_downloads_the_apk(client, release, enrolled_device, install):
    install(release, enrolled_device.device)
    response = get(client, release, enrolled_device)
    data = apk("app-v10").read_bytes()
    assert response.status_code == 200
    assert body(response) == data
    assert response["Content-Length"] == str(len(data))
    assert response["ETag"] == f'"{release.sha256}"' and response["X-Checksum-SHA256"] == release.sha256
    assert response["Content-Type"] == "application/vnd.android.package-archive"
    assert response["Accept-Ranges"] == "bytes"


def test_it_answers_with_and_without_the_trailing_slash_and_to_head(client, release, enrolled_device, install):
    install(release, enrolled_device.device)
    assert client.get(url(release) + "/", **enrolled_device.auth).status_code == 200
    head = client.head(url(release), **enrolled_device.auth)
    assert head.status_code == 200 and head["Content-Length"] == str(release.size) and head["ETag"]


def test_a_range_resumes_the_download(client, release, enrolled_device, install):
    install(release, enrolled_device.device)
    data = apk("app-v10").read_bytes()
    response = get(client, release, enrolled_device, HTTP_RANGE="bytes=100-")
    assert response.status_code == 206
    assert body(response) == data[100:]
    assert response["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert response["Content-Length"] == str(len(data) - 100)
    suffix = get(client, release, enrolled_device, HTTP_RANGE="bytes=-10")
    assert suffix.status_code == 206 and body(suffix) == data[-10:]
    middle = get(client, release, enrolled_device, HTTP_RANGE="bytes=5-9")
    assert body(middle) == data[5:10]


def test_if_range_with_the_current_etag_resumes_and_another_gets_the_whole_file(client, release, enrolled_device, install):
    install(release, enrolled_device.device)
    same = get(client, release, enrolled_device, HTTP_RANGE="bytes=10-", HTTP_IF_RANGE=f'"{release.sha256}"')
    assert same.status_code == 206
    other = get(client, release, enrolled_device, HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"something-else"')
    assert other.status_code == 200 and len(body(other)) == release.size


def test_a_range_past_the_end_is_a_416(client, release, enrolled_device, install):
    install(release, enrolled_device.device)
    response = get(client, release, enrolled_device, HTTP_RANGE=f"bytes={release.size}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{release.size}"
    assert response.json()["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", ["bytes=5-2", "items=0-1", "bytes=0-1,5-6", "bytes=x-", "bytes=-", "bytes=٣-"])
def test_a_range_it_does_not_serve_gets_the_whole_file(client, release, enrolled_device, install, header):
    install(release, enrolled_device.device)
    response = get(client, release, enrolled_device, HTTP_RANGE=header)
    assert response.status_code == 200 and len(body(response)) == release.size


# --- who may download ---------------------------------------------------------------------
def test_a_device_without_an_install_gets_a_404(client, release, enrolled_device):
    response = get(client, release, enrolled_device)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_another_device_gets_a_404(client, release, enrolled_device, other_enrolled_device, install):
    install(release, enrolled_device.device)
    assert get(client, release, other_enrolled_device).status_code == 404


def test_no_token_is_a_401(client, release, enrolled_device, install):
    install(release, enrolled_device.device)
    response = get(client, release)
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"


def test_an_admin_jwt_is_not_a_device_token(client, release, enrolled_device, install, admin_user):
    from accounts.tokens import RefreshToken

    install(release, enrolled_device.device)
    response = client.get(url(release), HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(admin_user).access_token}")
    assert response.status_code == 401


def test_a_retired_device_is_refused(client, release, enrolled_device, install, admin_user):
    from devices import services as device_services

    install(release, enrolled_device.device)
    device_services.delete_devices(actor=admin_user, device_ids=[str(enrolled_device.device.id)])
    assert get(client, release, enrolled_device).status_code == 401


@pytest.mark.parametrize("state", ["succeeded", "failed", "rejected", "expired", "cancelled"])
def test_a_final_install_no_longer_opens_the_download(client, release, enrolled_device, install, state):
    command = install(release, enrolled_device.device)
    Delivery.objects.filter(command=command).update(state=state)
    assert get(client, release, enrolled_device).status_code == 404


@pytest.mark.parametrize("state", ["queued", "sent", "received", "running"])
def test_an_open_install_in_any_live_state_opens_it(client, release, enrolled_device, install, state):
    command = install(release, enrolled_device.device)
    Delivery.objects.filter(command=command).update(state=state)
    assert get(client, release, enrolled_device).status_code == 200


def test_an_install_past_its_expiry_no_longer_opens_it(client, release, enrolled_device, install):
    command = install(release, enrolled_device.device)
    Delivery.objects.filter(command=command).update(expires_at=timezone.now())
    assert get(client, release, enrolled_device).status_code == 404


def test_an_install_of_another_release_does_not_open_this_one(client, release, enrolled_device, install, copy_apk, admin_uploader):
    from apks.services import releases

    other = releases.create_release(path=copy_apk("app-v11"), uploader=admin_uploader)
    install(other, enrolled_device.device)
    assert get(client, release, enrolled_device).status_code == 404


@pytest.mark.parametrize("apk_id", ["x", str(uuid.uuid4()), "0" * 300])
def test_an_unknown_apk_is_a_404(client, enrolled_device, apk_id):
    response = client.get(f"/api/v1/device/apks/{apk_id}/download", **enrolled_device.auth)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_other_methods_are_a_405(client, release, enrolled_device, install):
    install(release, enrolled_device.device)
    response = client.post(url(release), **enrolled_device.auth)
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_a_missing_stored_file_is_a_404_not_a_500(client, release, enrolled_device, install):
    install(release, enrolled_device.device)
    release.file.storage.delete(release.file.name)
    assert get(client, release, enrolled_device).status_code == 404


# --- nginx and S3 ---------------------------------------------------------------------------
def test_with_nginx_the_web_answers_an_internal_redirect(client, release, enrolled_device, install, settings):
    settings.APK_ACCEL_REDIRECT_PREFIX = "/protected-apks/"
    install(release, enrolled_device.device)
    response = get(client, release, enrolled_device)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-apks/{release.file.name}"
    assert response["X-Checksum-SHA256"] == release.sha256 and response["ETag"] == f'"{release.sha256}"'


def test_from_s3_the_device_is_sent_to_a_presigned_url(client, s3_storage, copy_apk, admin_uploader, enrolled_device, install):
    from apks.services import releases

    release = releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)
    install(release, enrolled_device.device)
    response = get(client, release, enrolled_device)
    assert response.status_code == 302
    assert response["X-Checksum-SHA256"] == release.sha256 and response["ETag"]
    location = response["Location"]
    assert "X-Amz-Signature=" in location
    fetched = httpx.get(location)  # the agent follows it without its token
    assert fetched.status_code == 200 and fetched.content == apk("app-v10").read_bytes()
    outsider = get(client, release, None)
    assert outsider.status_code == 401
