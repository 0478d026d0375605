"""Fixtures of the APK tests: the real APKs built by tests/fixtures/apks/build.sh, a storage of
the test's own (tmp_path), and the uploader personas services take."""

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "apks"


def apk(name: str) -> Path:
    return FIXTURES / f"{name}.apk"


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    """Each test stores release files and staged uploads under its own temporary directory
    (Django resets default_storage when STORAGES changes)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                         "OPTIONS": {"location": str(tmp_path / "media")}}}
    settings.APK_UPLOAD_DIR = tmp_path / "uploads"


@pytest.fixture
def admin_uploader(admin_user):
    from apks.services.releases import Uploader

    return Uploader(actor=admin_user, user=admin_user, via="console", is_admin=True)


@pytest.fixture
def ci_uploader():
    from apks.services.releases import Uploader

    return Uploader(actor="key:ci-pipeline", user=None, via="ci", is_admin=False)


@pytest.fixture
def copy_apk(tmp_path):
    """copy_apk(name) -> a path to a copy of a fixture APK (services never touch the originals)."""

    def copy(name: str) -> Path:
        target = tmp_path / "in" / f"{name}.apk"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(apk(name), target)
        return target

    return copy


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto in server mode (tests/s3_standin.py), one process for the session."""
    from tests.s3_standin import MotoServer

    server = MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture
def s3_storage(moto_server, settings):
    """The default storage is an S3 bucket of this test's own on the moto server, configured
    from a STORAGE_URL exactly as settings do it."""
    import uuid

    from mdm.storage_url import parse_storage_url
    from tests import s3_standin

    bucket = f"mdm-test-{uuid.uuid4().hex[:12]}"
    client = moto_server.client()
    client.create_bucket(Bucket=bucket)
    config = parse_storage_url(moto_server.storage_url(bucket), {"AWS_ACCESS_KEY_ID": s3_standin.ACCESS_KEY,
                                                                 "AWS_SECRET_ACCESS_KEY": s3_standin.SECRET_KEY})
    settings.STORAGES = {**settings.STORAGES, "default": config.django_storage}
    yield type("S3", (), {"client": client, "bucket": bucket, "prefix": "mdm"})


@pytest.fixture
def release(copy_apk, admin_uploader):
    from apks.services import releases

    return releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)


@pytest.fixture
def install(admin_user):
    """install(release, device) -> the install_apk command issued to that device (just an apk_id)."""
    from commands import services

    def issue(release, *devices, expires_in_s=3600):
        return services.issue_command(actor=admin_user, type="install_apk", params={"apk_id": str(release.id)},
                                      target={"device_ids": [str(d.id) for d in devices]}, expires_in_s=expires_in_s).command

    return issue


@pytest.fixture(autouse=True)
def _eager(eager_celery):
    """Tasks queued by the code under test (the parse of a finished upload) run in the test."""


class Tus:
    """Raw tus 1.0 requests through Django's test client, as a client sends them."""

    OCTET = "application/offset+octet-stream"

    def __init__(self, client, auth: dict | None = None, capture=None):
        self.client, self.auth, self.capture = client, auth or {}, capture

    def _h(self, extra):
        return {"HTTP_TUS_RESUMABLE": "1.0.0", **self.auth, **extra}

    def create(self, length: int, metadata: str | None = None, **extra):
        headers = {"HTTP_UPLOAD_LENGTH": str(length), **({"HTTP_UPLOAD_METADATA": metadata} if metadata is not None else {})}
        return self.client.post("/api/v1/uploads/", **self._h({**headers, **extra}))

    def head(self, url, **extra):
        return self.client.head(url, **self._h(extra))

    def patch(self, url, data: bytes, offset: int, **extra):
        content_type = extra.pop("content_type", self.OCTET)
        headers = {"HTTP_UPLOAD_OFFSET": str(offset), **extra}
        with self.capture(execute=True):  # the parse task, queued on commit when the last byte is in
            return self.client.generic("PATCH", url, data, content_type=content_type, **self._h(headers))

    def delete(self, url, **extra):
        return self.client.delete(url, **self._h(extra))

    def result(self, url):
        return self.client.get(url + "/result", **self.auth)

    def upload(self, data: bytes, metadata: str | None = None, chunk: int = 4096) -> str:
        created = self.create(len(data), metadata)
        assert created.status_code == 201, created.content
        url = created["Location"]
        for start in range(0, len(data), chunk):
            response = self.patch(url, data[start:start + chunk], start)
            assert response.status_code == 204, response.content
        return url


@pytest.fixture
def tus_admin(client, admin_user, django_capture_on_commit_callbacks):
    """An admin's console session (with its CSRF token, as the uploader sends it)."""
    from django.test import Client

    session = Client(enforce_csrf_checks=True)
    session.force_login(admin_user)
    session.get("/apks/")
    token = session.cookies["csrftoken"].value
    return Tus(session, {"HTTP_X_CSRFTOKEN": token}, django_capture_on_commit_callbacks)


@pytest.fixture
def tus_for(client, django_capture_on_commit_callbacks):
    """tus_for(auth headers) -> a Tus client with those credentials."""

    def make(auth):
        return Tus(client, auth, django_capture_on_commit_callbacks)

    return make


def jwt_auth(user) -> dict:
    from accounts.tokens import RefreshToken

    return {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}"}
