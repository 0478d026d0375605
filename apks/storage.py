"""Where release files live: Django's default storage, configured by STORAGE_URL (the
filesystem, or an S3-compatible store through django-storages). The only two questions the rest
of the app asks are here: a local path to stream from (filesystem), or a short-lived URL to
redirect a device to (object store)."""

from django.conf import settings
from django.core.files.storage import default_storage


def release_storage():
    """The storage of Release.file (a callable, so a settings change in tests takes effect and
    migrations do not record the backend)."""
    return default_storage


def local_path(storage, name: str) -> str | None:
    """The file's path on this machine, or None for a store without one (S3)."""
    try:
        return storage.path(name)
    except NotImplementedError:
        return None


def presigned_url(storage, name: str) -> str:
    """A URL the device follows without its token, valid APK_DOWNLOAD_URL_TTL_S (S3 pre-signed)."""
    return storage.url(name, expire=settings.APK_DOWNLOAD_URL_TTL_S)
