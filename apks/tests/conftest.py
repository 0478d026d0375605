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
