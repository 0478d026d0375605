"""A live server whose release files are this test's own (the test process creates releases
through apks.services, the server process serves them), and helpers to create those releases."""

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "apks"


@pytest.fixture
def media_dir(settings, tmp_path) -> Path:
    """Release files under this test's directory, for this process and the live server alike."""
    media = tmp_path / "media"
    media.mkdir()
    settings.MEDIA_ROOT = media
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                         "OPTIONS": {"location": str(media)}}}
    return media


@pytest.fixture
def apk_server(transactional_db, settings, tmp_path, media_dir):
    """A real daphne process against this test's database, storing releases in media_dir. Tasks
    run inline and the periodic jobs (the result and heartbeat flushes) in the server process."""
    from tests.live import LiveServer, env_for_test_database

    env = {**env_for_test_database(settings), "CELERY_TASK_ALWAYS_EAGER": "true", "EMBEDDED_SCHEDULER": "true",
           "STORAGE_URL": f"file://{media_dir}", "MDM_VAR_DIR": str(tmp_path / "var")}
    server = LiveServer(env, log_path=tmp_path / "live-server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_release(admin_user, tmp_path, media_dir):
    """make_release("app-v11") -> a Release created from that fixture APK, as an upload makes one."""
    from apks.services import releases

    uploader = releases.Uploader(actor=admin_user, user=admin_user, via="console", is_admin=True)

    def make(name: str):
        copy = tmp_path / "in" / f"{name}.apk"
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(FIXTURES / f"{name}.apk", copy)
        return releases.create_release(path=copy, uploader=uploader)

    return make
