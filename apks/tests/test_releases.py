"""Releases from real APKs (tests/fixtures/apks/build.sh): what is read from them, and each
refusal with the code the uploader sees."""

import hashlib
import zipfile

import pytest

from apks.models import Release
from apks.parsing import Refused, parse_apk
from apks.services import releases
from apks.tests.conftest import apk
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db
SIGNER_A = "e6e64bbc6d8e7a55ec0f0d4747f60c6a49cb51de2ab6efe30a246e6236e8ef4c"  # keytool -list of test-keystore.jks


def test_it_reads_the_manifest_and_the_v2_v3_signer():
    info = parse_apk(apk("app-v11"))
    assert (info.package, info.version_code, info.version_name) == ("com.example.fieldapp", 11, "1.1")
    assert (info.min_sdk, info.target_sdk, info.label) == (26, 34, "MDM test app-v11")
    assert info.abis == ["arm64-v8a", "armeabi-v7a"]
    assert info.debuggable is False
    assert info.signer_sha256 == SIGNER_A
    assert "v2" in info.signing_schemes or "v3" in info.signing_schemes


def test_it_reads_the_signer_of_a_v3_only_apk_and_of_a_v1_only_apk():
    assert parse_apk(apk("app-v12")).signer_sha256 == SIGNER_A
    legacy = parse_apk(apk("legacy-v1-only"))
    assert legacy.signer_sha256 == SIGNER_A
    assert legacy.signing_schemes == ["v1"]


def test_the_second_keystore_is_another_signer():
    assert parse_apk(apk("app-v13-signer-b")).signer_sha256 != SIGNER_A


def test_a_debuggable_build_is_recognised():
    assert parse_apk(apk("app-v14-debuggable")).debuggable is True


def test_it_refuses_an_unsigned_apk():
    with pytest.raises(Refused) as refused:
        parse_apk(apk("app-v15-unsigned"))
    assert refused.value.code == "unsigned"


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04garbage"])
def test_it_refuses_what_is_not_an_apk(tmp_path, content):
    path = tmp_path / "x.apk"
    path.write_bytes(content)
    with pytest.raises(Refused) as refused:
        parse_apk(path)
    assert refused.value.code == "not_an_apk"


def test_it_refuses_a_zip_without_a_manifest(tmp_path):
    path = tmp_path / "x.apk"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "a zip renamed to .apk")
    with pytest.raises(Refused) as refused:
        parse_apk(path)
    assert refused.value.code == "not_an_apk"


def test_a_release_is_stored_with_its_checksum_and_audited(copy_apk, admin_uploader):
    path = copy_apk("app-v10")
    release = releases.create_release(path=path, uploader=admin_uploader, channel="stable", notes="first", filename="field.apk")
    data = apk("app-v10").read_bytes()
    assert release.sha256 == hashlib.sha256(data).hexdigest() and release.size == len(data)
    assert release.file.name == f"apks/com.example.fieldapp/10-{release.sha256[:16]}.apk"
    with release.file.open("rb") as stored:
        assert stored.read() == data
    assert (release.uploaded_by, release.uploaded_via, release.notes, release.filename) == (admin_uploader.user, "console", "first", "field.apk")
    event = AuditEvent.objects.get(action="apk.upload")
    assert event.target_id == str(release.id) and event.data["sha256"] == release.sha256
    assert path.exists()  # the caller's file is left alone


def test_a_version_code_that_exists_is_refused(copy_apk, admin_uploader):
    releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)
    with pytest.raises(Refused) as refused:
        releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader, channel="beta")
    assert refused.value.code == "version_exists"
    assert Release.objects.count() == 1


def test_a_signer_change_is_refused_unless_an_admin_confirms_it(copy_apk, admin_uploader, ci_uploader):
    releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)
    with pytest.raises(Refused) as refused:
        releases.create_release(path=copy_apk("app-v13-signer-b"), uploader=admin_uploader)
    assert refused.value.code == "signer_changed"
    # An API key cannot confirm it, whatever it asks.
    with pytest.raises(Refused):
        releases.create_release(path=copy_apk("app-v13-signer-b"), uploader=ci_uploader, allow_signer_change=True)
    release = releases.create_release(path=copy_apk("app-v13-signer-b"), uploader=admin_uploader, allow_signer_change=True)
    assert release.signer_change_confirmed_by == "user:alice-admin"
    change = AuditEvent.objects.get(action="apk.signer_change")
    assert change.data["from"] == [SIGNER_A] and change.data["to"] == release.signer_sha256


def test_a_debuggable_build_is_refused_on_stable_and_taken_on_beta(copy_apk, admin_uploader):
    with pytest.raises(Refused) as refused:
        releases.create_release(path=copy_apk("app-v14-debuggable"), uploader=admin_uploader, channel="stable")
    assert refused.value.code == "debuggable_on_stable"
    release = releases.create_release(path=copy_apk("app-v14-debuggable"), uploader=admin_uploader, channel="beta")
    assert release.debuggable and release.channel == "beta"


def test_an_unknown_channel_is_refused(copy_apk, admin_uploader):
    with pytest.raises(Refused) as refused:
        releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader, channel="nightly")
    assert refused.value.code == "invalid_channel"


def test_a_refused_release_leaves_no_stored_file(copy_apk, admin_uploader, settings):
    releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)
    with pytest.raises(Refused):
        releases.create_release(path=copy_apk("app-v13-signer-b"), uploader=admin_uploader)
    stored = list((settings.MEDIA_ROOT / "apks").rglob("*.apk"))
    assert len(stored) == 1


def test_one_release_at_a_time_is_the_agent(copy_apk, admin_uploader, admin_user):
    first = releases.create_release(path=copy_apk("agent-test"), uploader=admin_uploader)
    second = releases.create_release(path=copy_apk("agent-test-v2"), uploader=admin_uploader)
    releases.mark_agent_release(actor=admin_user, release=first)
    releases.mark_agent_release(actor=admin_user, release=second)
    assert list(Release.objects.filter(agent=True)) == [second]
    assert releases.agent_release() == second
    assert AuditEvent.objects.filter(action="apk.mark_agent").count() == 2
