"""tus 1.0 at /api/v1/uploads/, rule by rule with raw requests (core, creation, termination,
checksum, expiration), then the result contract and who may upload."""

import base64
import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services as accounts
from apks.models import Release, Upload
from apks.tests.conftest import apk, jwt_auth
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db
APK = apk("app-v10").read_bytes()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- core and discovery ---------------------------------------------------------------------
def test_options_says_version_extensions_and_max_size_without_credentials(client, settings):
    response = client.options("/api/v1/uploads/")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0" and response["Tus-Resumable"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {"creation", "termination", "checksum", "expiration"}
    assert response["Tus-Max-Size"] == str(settings.APK_UPLOAD_MAX_BYTES)
    assert {"sha1", "sha256"} <= set(response["Tus-Checksum-Algorithm"].split(","))


def test_creation_answers_201_with_location_and_expiry(tus_admin, settings):
    response = tus_admin.create(len(APK), f"filename {b64('field.apk')},channel {b64('beta')},notes {b64('Änderungen')}")
    assert response.status_code == 201
    assert response["Location"].startswith("http://testserver/api/v1/uploads/")
    assert response["Tus-Resumable"] == "1.0.0" and response["Upload-Expires"].endswith("GMT")
    upload = Upload.objects.get()
    assert upload.metadata == {"filename": "field.apk", "channel": "beta", "notes": "Änderungen"}
    assert upload.created_by_label == "user:alice-admin" and upload.via == "console"
    assert (settings.APK_UPLOAD_DIR / f"{upload.id}.part").exists()


def test_head_gives_the_offset_and_is_not_cached(tus_admin):
    url = tus_admin.create(len(APK), f"filename {b64('x.apk')}")["Location"]
    tus_admin.patch(url, APK[:1000], 0)
    head = tus_admin.head(url)
    assert head.status_code == 200
    assert head["Upload-Offset"] == "1000" and head["Upload-Length"] == str(len(APK))
    assert head["Cache-Control"] == "no-store" and head["Tus-Resumable"] == "1.0.0"
    assert "filename" in head["Upload-Metadata"] and head["Upload-Expires"]


def test_a_whole_upload_becomes_a_release(tus_admin):
    url = tus_admin.upload(APK, f"filename {b64('field.apk')},notes {b64('first build')}")
    result = tus_admin.result(url).json()
    assert result["state"] == "done"
    release = Release.objects.get()
    assert result["release"] == {
        "id": str(release.id), "package": "com.example.fieldapp", "version_code": 10, "version_name": "1.0",
        "label": "MDM test app-v10", "sha256": hashlib.sha256(APK).hexdigest(), "signer_sha256": release.signer_sha256,
        "size": len(APK), "min_sdk": 26, "channel": "stable", "url": f"/apks/{release.id}/",
    }
    assert (release.filename, release.notes, release.uploaded_via) == ("field.apk", "first build", "console")
    assert not Upload.objects.get().staging_path.exists()  # staged bytes gone once stored


def test_a_patch_must_be_offset_octet_stream(tus_admin):
    url = tus_admin.create(len(APK))["Location"]
    response = tus_admin.patch(url, APK[:10], 0, content_type="application/octet-stream")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"


def test_a_wrong_offset_is_a_409_with_the_real_one(tus_admin):
    url = tus_admin.create(len(APK))["Location"]
    tus_admin.patch(url, APK[:100], 0)
    response = tus_admin.patch(url, APK[50:150], 50)
    assert response.status_code == 409 and response["Upload-Offset"] == "100"
    assert Upload.objects.get().offset == 100


def test_a_checksum_that_matches_is_taken(tus_admin):
    url = tus_admin.create(len(APK))["Location"]
    for algorithm in ("sha1", "sha256"):
        digest = base64.b64encode(hashlib.new(algorithm, APK[:100] if algorithm == "sha1" else APK[100:200]).digest()).decode()
        start = 0 if algorithm == "sha1" else 100
        response = tus_admin.patch(url, APK[start:start + 100], start, HTTP_UPLOAD_CHECKSUM=f"{algorithm} {digest}")
        assert response.status_code == 204, response.content
    assert Upload.objects.get().offset == 200


def test_a_checksum_mismatch_is_a_460_and_keeps_nothing(tus_admin):
    url = tus_admin.create(len(APK))["Location"]
    wrong = base64.b64encode(hashlib.sha1(b"something else").digest()).decode()
    response = tus_admin.patch(url, APK[:100], 0, HTTP_UPLOAD_CHECKSUM=f"sha1 {wrong}")
    assert response.status_code == 460 and response.json()["code"] == "checksum_mismatch"
    assert tus_admin.head(url)["Upload-Offset"] == "0"
    assert Upload.objects.get().staging_path.stat().st_size == 0


@pytest.mark.parametrize("header", ["crc32 AAAA", "sha1 not-base64!", "sha1 " + base64.b64encode(b"short").decode(), "sha1"])
def test_an_unusable_checksum_is_a_400(tus_admin, header):
    url = tus_admin.create(len(APK))["Location"]
    response = tus_admin.patch(url, APK[:100], 0, HTTP_UPLOAD_CHECKSUM=header)
    assert response.status_code == 400
    assert Upload.objects.get().offset == 0


def test_over_the_max_size_is_a_413(tus_admin, settings):
    settings.APK_UPLOAD_MAX_BYTES = 1000
    response = tus_admin.create(1001)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    url = tus_admin.create(100)["Location"]
    assert tus_admin.patch(url, b"x" * 101, 0).status_code == 413


@pytest.mark.parametrize("length", [None, "", "-1", "1.5", "abc", "+5", "١٢", "9" * 40])
def test_a_bad_upload_length_is_a_400(tus_admin, length):
    headers = {} if length is None else {"HTTP_UPLOAD_LENGTH": length}
    response = tus_admin.client.post("/api/v1/uploads/", **tus_admin._h(headers))
    assert response.status_code == 400 and response.json()["code"] == "invalid"


@pytest.mark.parametrize("metadata", ["filename !!!", "bad key " + b64("x"), "filename " + b64("a") + ",filename " + b64("b"),
                                      "channel " + b64("nightly"), "filename " + base64.b64encode(b"\xff\xfe").decode(),
                                      "notes " + b64("a\x00b"), "filename " + b64("x" * 300)])
def test_bad_metadata_is_a_400(tus_admin, metadata):
    response = tus_admin.create(10, metadata)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_a_missing_or_other_tus_version_is_a_412(tus_admin):
    url = tus_admin.create(10)["Location"]
    response = tus_admin.client.head(url, **tus_admin.auth)
    assert response.status_code == 412 and response["Tus-Version"] == "1.0.0"
    response = tus_admin.client.post("/api/v1/uploads/", HTTP_UPLOAD_LENGTH="10", HTTP_TUS_RESUMABLE="0.2.2", **tus_admin.auth)
    assert response.status_code == 412


def test_an_expired_upload_is_gone_and_the_reaper_removes_it(tus_admin):
    from apks.services import uploads

    url = tus_admin.create(len(APK))["Location"]
    tus_admin.patch(url, APK[:100], 0)
    upload = Upload.objects.get()
    Upload.objects.filter(pk=upload.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tus_admin.head(url).status_code == 410
    assert tus_admin.patch(url, APK[100:200], 100).status_code == 410
    assert uploads.reap_uploads()["expired"] == 1
    assert not upload.staging_path.exists() and not Upload.objects.exists()
    assert tus_admin.head(url).status_code == 404


def test_termination_deletes_the_upload_and_its_bytes(tus_admin):
    url = tus_admin.create(len(APK))["Location"]
    tus_admin.patch(url, APK[:100], 0)
    path = Upload.objects.get().staging_path
    with tus_admin.capture(execute=True):
        response = tus_admin.delete(url)
    assert response.status_code == 204
    assert not Upload.objects.exists() and not path.exists()
    assert tus_admin.head(url).status_code == 404


def test_the_method_override_header_is_honoured(tus_admin):
    url = tus_admin.create(len(APK))["Location"]
    with tus_admin.capture(execute=True):
        response = tus_admin.client.post(url, APK[:10], content_type="application/offset+octet-stream",
                                         **tus_admin._h({"HTTP_X_HTTP_METHOD_OVERRIDE": "PATCH", "HTTP_UPLOAD_OFFSET": "0"}))
    assert response.status_code == 204 and response["Upload-Offset"] == "10"


def test_a_second_writer_is_refused_while_the_first_holds_the_upload(tus_admin):
    url = tus_admin.create(len(APK))["Location"]
    Upload.objects.update(writer="someone-else", writer_since=timezone.now())
    response = tus_admin.patch(url, APK[:10], 0)
    assert response.status_code == 423 and response.json()["code"] == "upload_locked"
    Upload.objects.update(writer_since=timezone.now() - timedelta(hours=2))  # a writer that died
    assert tus_admin.patch(url, APK[:10], 0).status_code == 204


# --- refusals through /result ---------------------------------------------------------------
@pytest.mark.parametrize("name,code", [("app-v15-unsigned", "unsigned"), ("app-v14-debuggable", "debuggable_on_stable")])
def test_a_refused_upload_says_why(tus_admin, name, code):
    url = tus_admin.upload(apk(name).read_bytes())
    result = tus_admin.result(url).json()
    assert result["state"] == "refused" and result["code"] == code and result["detail"]
    assert not Upload.objects.get().staging_path.exists()


def test_not_an_apk_is_refused(tus_admin):
    url = tus_admin.upload(b"this is not an APK at all" * 10)
    assert tus_admin.result(url).json()["code"] == "not_an_apk"


def test_a_version_that_exists_is_refused(tus_admin):
    tus_admin.upload(APK)
    url = tus_admin.upload(APK)
    assert tus_admin.result(url).json()["code"] == "version_exists"


def test_a_signer_change_waits_for_an_admin_who_confirms_it(tus_admin, tus_for, admin_user):
    tus_admin.upload(APK)
    key = accounts.create_api_key(actor=admin_user, name="ci", scopes=["apk:upload"])
    ci = tus_for({"HTTP_AUTHORIZATION": f"Api-Key {key.raw}"})
    url = ci.upload(apk("app-v13-signer-b").read_bytes())
    assert ci.result(url).json()["code"] == "signer_changed"
    assert ci.client.post(url + "/confirm-signer", **ci.auth).status_code == 403  # a key cannot confirm
    with tus_admin.capture(execute=True):
        confirmed = tus_admin.client.post(url + "/confirm-signer", **tus_admin.auth)
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["state"] in ("parsing", "done")  # "done" at once where the parse runs in-process
    result = tus_admin.result(url).json()
    assert result["state"] == "done" and result["release"]["version_code"] == 13
    release = Release.objects.get(version_code=13)
    assert release.uploaded_via == "ci" and release.uploaded_by_label == "key:ci"
    assert release.signer_change_confirmed_by == "user:alice-admin"
    assert AuditEvent.objects.filter(action="apk.confirm_signer_change").count() == 1
    assert AuditEvent.objects.get(action="apk.signer_change").actor_label == "user:alice-admin"
    again = tus_admin.client.post(url + "/confirm-signer", **tus_admin.auth)
    assert again.status_code == 409


# --- who may upload -------------------------------------------------------------------------
def test_an_api_key_with_apk_upload_uploads_and_is_recorded_as_ci(tus_for, admin_user):
    key = accounts.create_api_key(actor=admin_user, name="pipeline", scopes=["apk:upload"])
    tus = tus_for({"HTTP_AUTHORIZATION": f"Api-Key {key.raw}"})
    url = tus.upload(APK)
    assert tus.result(url).json()["state"] == "done"
    assert Release.objects.get().uploaded_via == "ci"


def test_an_admin_jwt_uploads_as_api(tus_for, admin_user):
    tus = tus_for(jwt_auth(admin_user))
    tus.upload(APK)
    assert Release.objects.get().uploaded_via == "api"


def test_a_session_without_the_csrf_token_is_refused(tus_admin):
    tus_admin.auth = {}
    response = tus_admin.create(10)
    assert response.status_code == 403


@pytest.mark.parametrize("persona", ["viewer_user", "operator_user"])
def test_viewers_and_operators_are_refused(request, tus_for, persona):
    tus = tus_for(jwt_auth(request.getfixturevalue(persona)))
    assert tus.create(10).status_code == 403


def test_an_api_key_without_apk_upload_is_refused(tus_for, admin_user):
    key = accounts.create_api_key(actor=admin_user, name="reader", scopes=["apk:read"])
    assert tus_for({"HTTP_AUTHORIZATION": f"Api-Key {key.raw}"}).create(10).status_code == 403


def test_no_credentials_and_a_device_token_are_a_401(tus_for, enrolled_device):
    assert tus_for({}).create(10).status_code == 401
    assert tus_for(enrolled_device.auth).create(10).status_code == 401


def test_someone_else_s_upload_is_a_404(tus_admin, tus_for, admin_user):
    url = tus_admin.create(len(APK))["Location"]
    other_admin = type(admin_user).objects.create_user("bob-admin", password="x-Passphrase-1", role="admin")
    other = tus_for(jwt_auth(other_admin))
    assert other.head(url).status_code == 404
    assert other.patch(url, APK[:10], 0).status_code == 404
    assert other.delete(url).status_code == 404
    assert tus_for(jwt_auth(type(admin_user).objects.create_user("olga", password="x-Passphrase-1", role="operator"))).result(url).status_code == 403
    key = accounts.create_api_key(actor=admin_user, name="ci", scopes=["apk:upload"])
    assert tus_for({"HTTP_AUTHORIZATION": f"Api-Key {key.raw}"}).head(url).status_code == 404
