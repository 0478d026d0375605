"""Retention: the newest N releases per package and channel stay, and so does any release an
install_apk still waits for and the agent release; the rest go with their stored files (from
the filesystem and from S3)."""

import pytest

from apks.models import Release
from apks.services import releases, retention
from commands.models import Delivery
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db
FIELDAPP = ["app-v10", "app-v11", "app-v12"]


@pytest.fixture
def three(copy_apk, admin_uploader):
    return [releases.create_release(path=copy_apk(name), uploader=admin_uploader) for name in FIELDAPP]


def codes():
    return sorted(Release.objects.values_list("version_code", flat=True))


def test_the_newest_per_package_and_channel_stay_and_the_rest_go_with_their_files(three, copy_apk, admin_uploader, settings,
                                                                                   django_capture_on_commit_callbacks):
    beta = releases.create_release(path=copy_apk("app-v14-debuggable"), uploader=admin_uploader, channel="beta")
    paths = [settings.MEDIA_ROOT / r.file.name for r in three]
    with django_capture_on_commit_callbacks(execute=True):
        assert retention.purge_old_releases(keep=1) == 2
    assert codes() == [12, 14]  # stable keeps its newest, beta its only one
    assert [p.exists() for p in paths] == [False, False, True]
    assert AuditEvent.objects.filter(action="apk.delete").count() == 2
    assert beta.pk in set(Release.objects.values_list("pk", flat=True))


def test_a_release_an_install_waits_for_is_kept(three, enrolled_device, install, django_capture_on_commit_callbacks):
    command = install(three[0], enrolled_device.device)
    with django_capture_on_commit_callbacks(execute=True):
        retention.purge_old_releases(keep=1)
    assert codes() == [10, 12]
    Delivery.objects.filter(command=command).update(state="succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        retention.purge_old_releases(keep=1)
    assert codes() == [12]


def test_the_agent_release_is_kept(three, admin_user, django_capture_on_commit_callbacks):
    releases.mark_agent_release(actor=admin_user, release=three[0])
    with django_capture_on_commit_callbacks(execute=True):
        retention.purge_old_releases(keep=1)
    assert codes() == [10, 12]


def test_the_default_keeps_apk_keep_releases(three, settings, django_capture_on_commit_callbacks):
    settings.APK_KEEP_RELEASES = 2
    from apks.tasks import purge_releases

    with django_capture_on_commit_callbacks(execute=True):
        assert purge_releases() == 1
    assert codes() == [11, 12]


def test_the_file_goes_from_s3_too(s3_storage, copy_apk, admin_uploader, django_capture_on_commit_callbacks):
    made = [releases.create_release(path=copy_apk(name), uploader=admin_uploader) for name in FIELDAPP[:2]]
    key = f"{s3_storage.prefix}/{made[0].file.name}"
    s3_storage.client.head_object(Bucket=s3_storage.bucket, Key=key)
    with django_capture_on_commit_callbacks(execute=True):
        retention.purge_old_releases(keep=1)
    listed = s3_storage.client.list_objects_v2(Bucket=s3_storage.bucket).get("Contents", [])
    assert [o["Key"] for o in listed] == [f"{s3_storage.prefix}/{made[1].file.name}"]


def test_beat_runs_it_hourly_and_reaps_uploads():
    from mdm.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"apks.tasks.purge_releases", "apks.tasks.reap_uploads"} <= tasks
