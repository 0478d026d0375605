"""GET /api/v1/device/apks/<apk_id>/download (PROTOCOL.md): the APK's bytes with Content-Length,
ETag and X-Checksum-SHA256, resumable with Range/If-Range; or, when nginx serves the files
(APK_ACCEL_REDIRECT_PREFIX), an X-Accel-Redirect so no web worker streams them; or, from an
object store, a 302 to a pre-signed URL. Any APK the device may not download is a 404, exactly
like one that does not exist."""

import os
import uuid
from urllib.parse import quote

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from apks import storage
from apks.downloads import may_download
from apks.models import Release
from apks.ranges import Unsatisfiable, byte_range
from devices.api.body import method_not_allowed, shed_load
from devices.auth import device_required
from mdm.api import error

CONTENT_TYPE = "application/vnd.android.package-archive"
CHUNK = 256 * 1024


def not_found():
    return error("No such APK for this device.", "not_found", 404)


class FileRange:
    """The bytes first..last of a file, read CHUNK at a time (never the file in memory); closed
    by the response when the transfer ends or breaks."""

    def __init__(self, path: str, first: int, last: int):
        self.handle = open(path, "rb")
        self.handle.seek(first)
        self.remaining = last - first + 1

    def __iter__(self):
        while self.remaining > 0:
            chunk = self.handle.read(min(CHUNK, self.remaining))
            if not chunk:
                return
            self.remaining -= len(chunk)
            yield chunk

    def close(self):
        self.handle.close()


def _headers(response, release: Release):
    response["ETag"] = f'"{release.sha256}"'
    response["X-Checksum-SHA256"] = release.sha256
    response["Cache-Control"] = "private, no-transform"
    return response


def _release(apk_id: str) -> Release | None:
    try:
        return Release.objects.filter(pk=uuid.UUID(str(apk_id))).first()
    except ValueError:
        return None


@csrf_exempt
@shed_load
@device_required
def download(request, apk_id):
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed("GET, HEAD")
    release = _release(apk_id)
    if release is None or not may_download(device_id=request.device_id, release=release):
        return not_found()
    return serve_release(request, release)


def serve_release(request, release: Release):
    """The release's bytes (Range, If-Range), an X-Accel-Redirect, or a pre-signed redirect."""
    store, name = release.file.storage, release.file.name
    path = storage.local_path(store, name)
    if path is None:  # an object store: the device follows a short-lived URL without its token
        return _headers(HttpResponseRedirect(storage.presigned_url(store, name)), release)
    try:
        size = os.stat(path).st_size
    except OSError:
        return not_found()
    if settings.APK_ACCEL_REDIRECT_PREFIX:
        return _accel(release, name)
    etag = f'"{release.sha256}"'
    try:
        span = byte_range(request.META.get("HTTP_RANGE"), size, if_range=request.META.get("HTTP_IF_RANGE"), etag=etag)
    except Unsatisfiable:
        response = error("The range starts past the end of the APK.", "range_not_satisfiable", 416)
        response["Content-Range"] = f"bytes */{size}"
        return _headers(response, release)
    first, last = span if span is not None else (0, size - 1)
    if request.method == "HEAD":
        response = HttpResponse(content_type=CONTENT_TYPE, status=206 if span else 200)
    else:
        response = StreamingHttpResponse(FileRange(path, first, last), content_type=CONTENT_TYPE, status=206 if span else 200)
    response["Content-Length"] = str(last - first + 1)
    if span is not None:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'attachment; filename="{release.package}-{release.version_code}.apk"'
    return _headers(response, release)


def _accel(release: Release, name: str) -> HttpResponse:
    """nginx sends the file from its internal location (deploy/nginx.conf), with Range, while
    this worker is free at once; the headers set here are passed on by that location."""
    response = HttpResponse(content_type=CONTENT_TYPE)
    response["X-Accel-Redirect"] = settings.APK_ACCEL_REDIRECT_PREFIX + quote(name)
    response["Content-Disposition"] = f'attachment; filename="{release.package}-{release.version_code}.apk"'
    return _headers(response, release)
