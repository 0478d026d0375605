"""Release files through django-storages: the filesystem by default, any S3-compatible store by
STORAGE_URL, here against moto in server mode (a real HTTP S3 endpoint)."""

import hashlib

import pytest

from apks.services import releases
from apks.tests.conftest import apk
from mdm.storage_url import parse_storage_url

pytestmark = pytest.mark.django_db


def test_a_release_goes_to_the_s3_bucket_under_its_prefix(s3_storage, copy_apk, admin_uploader):
    release = releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)
    key = f"{s3_storage.prefix}/{release.file.name}"
    body = s3_storage.client.get_object(Bucket=s3_storage.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == release.sha256 == hashlib.sha256(apk("app-v10").read_bytes()).hexdigest()


def test_the_s3_url_is_pre_signed_and_short_lived(s3_storage, copy_apk, admin_uploader, settings):
    import httpx

    from apks import storage

    settings.APK_DOWNLOAD_URL_TTL_S = 120
    release = releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)
    url = storage.presigned_url(release.file.storage, release.file.name)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=120" in url
    assert httpx.get(url).content == apk("app-v10").read_bytes()
    unsigned = url.split("?")[0]
    assert httpx.get(unsigned).status_code == 403  # the bucket is private


def test_file_urls_give_the_filesystem(tmp_path):
    config = parse_storage_url(f"file://{tmp_path}/media", {})
    assert config.kind == "file" and config.media_root == tmp_path / "media"
    assert config.django_storage["BACKEND"] == "django.core.files.storage.FileSystemStorage"


def test_s3_urls_take_their_credentials_from_the_environment_or_a_file(tmp_path):
    url = "s3://releases/fleet/apks?endpoint_url=https://minio.example:9000&region=eu-west-1&addressing_style=path"
    options = parse_storage_url(url, {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}).django_storage["OPTIONS"]
    assert (options["bucket_name"], options["location"], options["endpoint_url"], options["region_name"]) == (
        "releases", "fleet/apks", "https://minio.example:9000", "eu-west-1")
    assert (options["access_key"], options["secret_key"], options["addressing_style"]) == ("AK", "SK", "path")
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    options = parse_storage_url(url, {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY_FILE": str(secret)}).django_storage["OPTIONS"]
    assert options["secret_key"] == "from-a-file"
    assert "access_key" not in parse_storage_url("s3://releases", {}).django_storage["OPTIONS"]  # boto3's own chain


@pytest.mark.parametrize("url", [
    "ftp://host/x", "file://relative/path", "s3://", "s3://user:pw@bucket/x", "s3://bucket?secret_key=x",
    "s3://bucket?endpoint_url=file:///etc", "s3://bucket?addressing_style=sideways",
])
def test_bad_storage_urls_are_refused_saying_why(url):
    with pytest.raises(ValueError):
        parse_storage_url(url, {})


def test_half_a_credential_pair_is_refused():
    with pytest.raises(ValueError, match="both"):
        parse_storage_url("s3://bucket", {"AWS_ACCESS_KEY_ID": "AK"})


def test_an_unreadable_secret_file_is_refused():
    with pytest.raises(ValueError, match="cannot be read"):
        parse_storage_url("s3://bucket", {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY_FILE": "/nonexistent/secret"})


def test_settings_switch_to_s3_by_storage_url(tmp_path):
    from mdm.tests.test_settings_from_environment import run_python

    code = "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps(s.STORAGES['default']))"
    env = {"STORAGE_URL": "s3://releases/apks?region=eu-west-1", "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    result = run_python(code, env, tmp_path)
    assert result.returncode == 0, result.stderr
    import json

    storage = json.loads(result.stdout.strip().splitlines()[-1])
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["bucket_name"] == "releases" and storage["OPTIONS"]["location"] == "apks"
