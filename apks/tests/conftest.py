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
