"""tus 1.0 at /api/v1/uploads/ (core, creation, termination, checksum, expiration): what the
console's uploader (tus-js-client) and CI (tuspy, or any tus client) speak. docs/apks.md says
why this is ours and not a library's. The protocol only: state changes are in
apks.services.uploads, the bytes are read in bounded chunks from the request stream (never
request.body, so DATA_UPLOAD_MAX_MEMORY_SIZE never applies and nothing is held in memory).

Who: admins (session with X-CSRFToken, or JWT) and API keys with `apk:upload`. An upload is
its creator's: another user or key gets a 404 for it. OPTIONS (discovery) needs no credentials.

After the last byte, `GET <upload>/result` says what became of it; an admin may turn a
`signer_changed` refusal into a release with `POST <upload>/confirm-signer`."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apikeys import audit_actor
from accounts.models import ApiKey
from accounts.permissions import HasScope, IsAdmin
from apks import tusproto
from apks.models import Upload
from apks.services import uploads
from apks.services.uploads import Owner, UploadError
from mdm import audit
from mdm.audit import client_ip

OCTET = "application/offset+octet-stream"


def owner_of(request) -> Owner:
    if isinstance(request.auth, ApiKey):
        return Owner(user=None, api_key_id=request.auth.id, label=f"key:{request.auth.name}", via="ci", is_admin=False)
    via = "console" if isinstance(request.successful_authenticator, SessionAuthentication) else "api"
    return Owner(user=request.user, api_key_id=None, label=audit.actor_label(request.user), via=via, is_admin=True)


def _error(status: int, code: str, detail: str, headers: dict | None = None) -> Response:
    return Response({"detail": detail, "code": code}, status=status, headers=headers)


def _expires(upload: Upload) -> dict:
    return {"Upload-Expires": http_date(upload.expires_at.timestamp())} if upload.state == Upload.State.UPLOADING else {}


class UnreadBody(BaseParser):
    """Takes any content type and reads nothing: the PATCH body is read by hand, in chunks.
    (With no parser at all, DRF's CSRF check of a session request answers 415 to a tus POST.)"""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


@extend_schema(exclude=True)  # tus, not REST: documented in docs/apks.md
class TusView(APIView):
    parser_classes = [UnreadBody]
    permission_classes = [IsAdmin | HasScope.of("apk:upload")]
    tus_protocol = True

    def dispatch(self, request, *args, **kwargs):
        # tus: clients behind proxies that allow only GET/POST send the method here.
        override = request.META.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if request.method == "POST" and override in ("PATCH", "DELETE", "HEAD"):
            request.method = override
        return super().dispatch(request, *args, **kwargs)

    def perform_authentication(self, request):
        if request.method != "OPTIONS":
            super().perform_authentication(request)

    def check_permissions(self, request):
        if request.method != "OPTIONS":
            super().check_permissions(request)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.version_refused = None
        if self.tus_protocol and request.method != "OPTIONS" and request.META.get("HTTP_TUS_RESUMABLE") != tusproto.VERSION:
            self.version_refused = _error(412, "tus_version", f"Send Tus-Resumable: {tusproto.VERSION} (the only version served).",
                                          {"Tus-Version": tusproto.VERSION})

    def handle_exception(self, exc):
        if isinstance(exc, UploadError):
            return _error(exc.status, exc.code, exc.detail, exc.headers)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.tus_protocol:
            response["Tus-Resumable"] = tusproto.VERSION
        response["Cache-Control"] = "no-store"
        return response

    def options(self, request, *args, **kwargs):
        return Response(status=204, headers={
            "Tus-Version": tusproto.VERSION,
            "Tus-Extension": tusproto.EXTENSIONS,
            "Tus-Max-Size": str(settings.APK_UPLOAD_MAX_BYTES),
            "Tus-Checksum-Algorithm": ",".join(uploads.CHECKSUMS),
        })

    def _upload(self, request, upload_id) -> Upload:
        upload = uploads.owned_by(owner_of(request)).filter(pk=upload_id).first()
        if upload is None:
            raise UploadError(404, "not_found", "No such upload.")
        return upload


class UploadCollection(TusView):
    def post(self, request):
        if self.version_refused:
            return self.version_refused
        if "HTTP_UPLOAD_DEFER_LENGTH" in request.META:
            return _error(400, "invalid", "Upload-Defer-Length is not supported: send Upload-Length.")
        try:
            length = tusproto.number(request.META.get("HTTP_UPLOAD_LENGTH"), "Upload-Length")
            meta = tusproto.metadata(request.META.get("HTTP_UPLOAD_METADATA"))
        except ValueError as exc:
            return _error(400, "invalid", str(exc))
        channel = meta.get("channel") or "stable"
        if channel not in settings.APK_CHANNELS:
            return _error(400, "invalid", f"Upload-Metadata: channel must be one of {', '.join(settings.APK_CHANNELS)}.")
        meta["channel"] = channel
        upload = uploads.create_upload(owner=owner_of(request), length=length, metadata=meta)
        location = request.build_absolute_uri(reverse("apks-upload", args=[upload.id]))
        return Response(status=201, headers={"Location": location, **_expires(upload)})


class UploadResource(TusView):
    def head(self, request, upload_id):
        if self.version_refused:
            return self.version_refused
        upload = self._upload(request, upload_id)
        uploads._live(upload, timezone.now())
        headers = {"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length), **_expires(upload)}
        if upload.metadata:
            headers["Upload-Metadata"] = tusproto.encode_metadata(upload.metadata)
        return Response(status=200, headers=headers)

    def patch(self, request, upload_id):
        if self.version_refused:
            return self.version_refused
        upload = self._upload(request, upload_id)
        if request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != OCTET:
            return _error(415, "unsupported_media_type", f"PATCH bodies are Content-Type: {OCTET}.")
        try:
            offset = tusproto.number(request.META.get("HTTP_UPLOAD_OFFSET"), "Upload-Offset")
            body_length = tusproto.number(request.META.get("CONTENT_LENGTH") or None, "Content-Length")
        except ValueError as exc:
            return _error(400, "invalid", str(exc))
        checksum = uploads.decode_checksum(request.META.get("HTTP_UPLOAD_CHECKSUM"))
        upload = uploads.write_chunk(upload_id=upload.id, offset=offset, body_length=body_length, stream=request._request,
                                     checksum=checksum)
        return Response(status=204, headers={"Upload-Offset": str(upload.offset), **_expires(upload)})

    def delete(self, request, upload_id):
        if self.version_refused:
            return self.version_refused
        uploads.terminate_upload(upload=self._upload(request, upload_id))
        return Response(status=204)


def result_body(upload: Upload) -> dict:
    """The contract with the console's uploader (docs/apks.md)."""
    if upload.state == Upload.State.UPLOADING:
        return {"state": "uploading", "offset": upload.offset, "length": upload.length}
    if upload.state in (Upload.State.COMPLETE, Upload.State.PARSING):
        return {"state": "parsing"}
    if upload.state == Upload.State.REFUSED:
        return {"state": "refused", "detail": upload.refusal_detail, "code": upload.refusal_code}
    r = upload.release
    if r is None:  # the release was purged since
        return {"state": "refused", "detail": "The release made from this upload was deleted since.", "code": "release_deleted"}
    return {"state": "done", "release": {
        "id": str(r.id), "package": r.package, "version_code": r.version_code, "version_name": r.version_name,
        "label": r.label, "sha256": r.sha256, "signer_sha256": r.signer_sha256, "size": r.size, "min_sdk": r.min_sdk,
        "channel": r.channel, "url": reverse("apks:release", args=[r.id]),
    }}


class UploadResult(TusView):
    """The uploader's, or any admin's (who may have to confirm a signer change of a CI upload)."""

    tus_protocol = False

    def _upload(self, request, upload_id) -> Upload:
        if getattr(request.user, "is_admin_role", False):
            upload = Upload.objects.filter(pk=upload_id).first()
            if upload is None:
                raise UploadError(404, "not_found", "No such upload.")
            return upload
        return super()._upload(request, upload_id)

    def get(self, request, upload_id):
        upload = self._upload(request, upload_id)
        return Response(result_body(Upload.objects.select_related("release").get(pk=upload.pk)))


class ConfirmSigner(TusView):
    """Admins only (never an API key), audited."""

    tus_protocol = False
    permission_classes = [IsAdmin]

    def _upload(self, request, upload_id) -> Upload:
        # Any admin may confirm any upload (a CI key's included): that is the point of it.
        upload = Upload.objects.filter(pk=upload_id).first()
        if upload is None:
            raise UploadError(404, "not_found", "No such upload.")
        return upload

    def post(self, request, upload_id):
        upload = uploads.confirm_signer_change(actor=audit_actor(request.user), upload=self._upload(request, upload_id),
                                               ip=client_ip(request))
        return Response(result_body(Upload.objects.select_related("release").get(pk=upload.pk)))
