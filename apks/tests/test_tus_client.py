"""The real tus client CI uses (tuspy, pinned) against a live server process: chunked, with
checksums, resumed by a second client from the upload's URL, ending in a release."""

import httpx
import pytest
from tusclient import client as tus_client

from apks.tests.conftest import apk

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def apk_server(transactional_db, settings, tmp_path):
    from tests.live import LiveServer, env_for_test_database

    env = {**env_for_test_database(settings), "CELERY_TASK_ALWAYS_EAGER": "true", "EMBEDDED_SCHEDULER": "false",
           "STORAGE_URL": f"file://{tmp_path / 'media'}", "APK_UPLOAD_DIR": str(tmp_path / "uploads")}
    server = LiveServer(env, log_path=tmp_path / "live-server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def wsgi_server(transactional_db, settings, tmp_path):
    """granian, the production web server: it hands the request body to the app as it arrives."""
    from tests.live import LiveServer, env_for_test_database

    env = {**env_for_test_database(settings), "CELERY_TASK_ALWAYS_EAGER": "true", "EMBEDDED_SCHEDULER": "false",
           "STORAGE_URL": f"file://{tmp_path / 'media'}", "APK_UPLOAD_DIR": str(tmp_path / "uploads")}
    server = LiveServer(env, log_path=tmp_path / "granian.log", wsgi=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def upload_key(admin_user):
    from accounts import services

    return services.create_api_key(actor=admin_user, name="ci", scopes=["apk:upload", "apk:read"]).raw


def test_tuspy_uploads_in_checksummed_chunks_and_resumes(apk_server, upload_key):
    from apks.models import Release

    headers = {"Authorization": f"Api-Key {upload_key}"}
    path = apk("app-v11")
    client = tus_client.TusClient(f"{apk_server.url}/api/v1/uploads/", headers=headers)
    first = client.uploader(file_path=str(path), chunk_size=1500, metadata={"filename": "field-1.1.apk", "channel": "beta"},
                            upload_checksum=True)
    first.upload_chunk()
    first.upload_chunk()
    assert first.offset == 3000
    # A new client (CI retried) resumes from the upload's URL: it asks the offset (HEAD) first.
    resumed = tus_client.TusClient(f"{apk_server.url}/api/v1/uploads/", headers=headers).uploader(
        file_path=str(path), url=first.url, chunk_size=4000, upload_checksum=True)
    assert resumed.offset == 3000
    resumed.upload()
    result = httpx.get(first.url + "/result", headers=headers).json()
    assert result["state"] == "done", result
    release = Release.objects.get()
    assert (release.package, release.version_code, release.channel, release.filename) == ("com.example.fieldapp", 11, "beta", "field-1.1.apk")
    assert release.size == len(path.read_bytes()) and release.uploaded_via == "ci"
    listed = httpx.get(f"{apk_server.url}/api/v1/apks?package=com.example.fieldapp", headers=headers).json()
    assert [r["version_code"] for r in listed["results"]] == [11]


def test_a_second_patch_while_one_is_writing_is_refused_and_the_bytes_do_not_interleave(wsgi_server, upload_key):
    """Two writers on one upload at once: the one that holds the claim (taken under the row
    lock) writes, the other is answered 423 and nothing of it lands."""
    import http.client
    import time
    from urllib.parse import urlsplit

    from apks.models import Upload

    headers = {"Authorization": f"Api-Key {upload_key}", "Tus-Resumable": "1.0.0"}
    apk_server = wsgi_server
    created = httpx.post(f"{apk_server.url}/api/v1/uploads/", headers={**headers, "Upload-Length": "200000"})
    url = created.headers["Location"]
    path = urlsplit(url).path
    slow = http.client.HTTPConnection("127.0.0.1", apk_server.port, timeout=30)
    slow.putrequest("PATCH", path)
    for name, value in {**headers, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0",
                        "Content-Length": "100000"}.items():
        slow.putheader(name, value)
    slow.endheaders()
    slow.send(b"a" * 50_000)  # half the body: the server holds the claim and waits for the rest
    deadline = time.monotonic() + 20
    while not Upload.objects.filter(writer__gt="").exists():
        assert time.monotonic() < deadline, "the first PATCH never took the claim"
        time.sleep(0.05)
    second = httpx.patch(url, content=b"b" * 100_000, headers={**headers, "Content-Type": "application/offset+octet-stream",
                                                               "Upload-Offset": "0"})
    assert second.status_code == 423 and second.json()["code"] == "upload_locked"
    slow.send(b"a" * 50_000)
    first = slow.getresponse()
    assert first.status == 204 and first.getheader("Upload-Offset") == "100000"
    upload = Upload.objects.get()
    assert upload.offset == 100_000 and upload.writer == ""
    assert upload.staging_path.read_bytes() == b"a" * 100_000
