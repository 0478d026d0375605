"""tus uploads (apks.tus speaks the protocol; this module changes the state).

Bytes go to a staging file under APK_UPLOAD_DIR as they arrive, in bounded chunks (never a
whole APK in memory). A PATCH first takes the upload's writer claim under a row lock (SELECT
... FOR UPDATE, held only for that short transaction, not while bytes arrive), writes at the
recorded offset, then moves the offset and gives the claim back under the lock again. A second
PATCH on the same upload meanwhile finds the claim taken and is answered 423 (tus clients retry
it), so two writers never interleave bytes and the offset only ever moves by what one writer
verified. When the last byte is in, the parse task (apks.tasks.parse_upload) turns the file
into a Release or a refusal (apks.services.releases)."""

import base64
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apks.models import Upload
from apks.parsing import Refused
from apks.services import releases
from mdm import audit

logger = logging.getLogger(__name__)
CHUNK = 1024 * 1024  # what one read of the request body takes at most
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
WRITER_STALE = timedelta(hours=1)  # a claim this old belongs to a writer that died: taken over
PARSE_STALE = timedelta(minutes=30)


class UploadError(Exception):
    """A tus refusal: the HTTP status, a {detail, code} body, and headers to add."""

    def __init__(self, status: int, code: str, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


@dataclass(frozen=True)
class Owner:
    """Who created an upload: only they may continue, read or end it."""

    user: object | None  # a User, or None for an API key
    api_key_id: uuid.UUID | None
    label: str
    via: str
    is_admin: bool


def _staging(upload_id) -> str:
    return str(settings.APK_UPLOAD_DIR / f"{upload_id}.part")


def remove_staging(upload_id) -> None:
    try:
        os.unlink(_staging(upload_id))
    except FileNotFoundError:
        pass


def owned_by(owner: Owner):
    if owner.api_key_id is not None:
        return Upload.objects.filter(api_key_id=owner.api_key_id)
    return Upload.objects.filter(created_by=owner.user, api_key_id__isnull=True)


@transaction.atomic
def create_upload(*, owner: Owner, length: int, metadata: dict, now=None) -> Upload:
    if length > settings.APK_UPLOAD_MAX_BYTES:
        raise UploadError(413, "too_large", f"The upload is larger than the limit of {settings.APK_UPLOAD_MAX_BYTES} bytes (APK_UPLOAD_MAX_BYTES).")
    now = now or timezone.now()
    upload = Upload.objects.create(
        length=length, metadata=metadata, created_by=owner.user, created_by_label=owner.label, api_key_id=owner.api_key_id,
        via=owner.via, created_at=now, expires_at=now + timedelta(seconds=settings.APK_UPLOAD_EXPIRY_S),
    )
    settings.APK_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    # Created empty and private now, so a HEAD before the first PATCH finds offset 0 on disk too.
    os.close(os.open(_staging(upload.id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    if length == 0:
        _complete(upload)
    return upload


def _live(upload: Upload, now) -> None:
    if upload.state == Upload.State.UPLOADING and upload.expires_at <= now:
        raise UploadError(410, "expired", "This upload expired: start a new one.")


def _claim(upload_id, offset: int, body_length: int, now) -> tuple[Upload, str]:
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None:
            raise UploadError(404, "not_found", "No such upload.")
        _live(upload, now)
        if upload.state != Upload.State.UPLOADING:
            raise UploadError(409, "upload_complete", "This upload is complete: nothing more is accepted.",
                              {"Upload-Offset": str(upload.offset)})
        if upload.writer and upload.writer_since and upload.writer_since > now - WRITER_STALE:
            raise UploadError(423, "upload_locked", "Another request is writing to this upload: retry when it is done.",
                              {"Retry-After": "1"})
        if offset != upload.offset:
            raise UploadError(409, "offset_mismatch", f"Upload-Offset {offset} is not the upload's offset {upload.offset}: HEAD it and resume from there.",
                              {"Upload-Offset": str(upload.offset)})
        if offset + body_length > upload.length:
            raise UploadError(413, "too_large", f"The body goes past Upload-Length ({upload.length} bytes).")
        writer = uuid.uuid4().hex
        Upload.objects.filter(pk=upload.pk).update(writer=writer, writer_since=now)
        return upload, writer


def write_chunk(*, upload_id, offset: int, body_length: int, stream, checksum: tuple[str, bytes] | None, now=None) -> Upload:
    """Append the request body (read from `stream`, at most CHUNK at a time) at `offset`.
    A checksum mismatch (460) or a short body under a checksum keeps nothing of this PATCH;
    a body cut short without one keeps what arrived (tus: the client resumes from HEAD)."""
    now = now or timezone.now()
    upload, writer = _claim(upload_id, offset, body_length, now)
    hasher = CHECKSUMS[checksum[0]]() if checksum else None
    received = 0
    try:
        with open(_staging(upload.id), "r+b") as handle:
            handle.seek(offset)
            handle.truncate(offset)  # what a failed earlier PATCH left past the offset
            while received < body_length:
                try:
                    chunk = stream.read(min(CHUNK, body_length - received))
                except OSError:  # the client went away mid-body
                    chunk = b""
                if not chunk:
                    break
                handle.write(chunk)
                received += len(chunk)
                if hasher:
                    hasher.update(chunk)
            failure = None
            if hasher and received < body_length:
                failure = UploadError(400, "incomplete_body", "The body ended before Content-Length: nothing of it was kept.")
            elif hasher and hasher.digest() != checksum[1]:
                failure = UploadError(460, "checksum_mismatch", "The body does not match Upload-Checksum: nothing of it was kept.")
            if failure:
                handle.truncate(offset)
                received = 0
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        _release_claim(upload.id, writer, offset)
        raise
    upload = _release_claim(upload.id, writer, offset + received)
    if failure:
        raise failure
    return upload


def _release_claim(upload_id, writer: str, new_offset: int) -> Upload:
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None:
            raise UploadError(404, "not_found", "No such upload (it was ended meanwhile).")
        if upload.writer != writer:  # a stale claim was taken over: this writer's bytes do not count
            raise UploadError(409, "offset_mismatch", "Another request took this upload over.", {"Upload-Offset": str(upload.offset)})
        upload.offset, upload.writer, upload.writer_since = new_offset, "", None
        upload.save(update_fields=["offset", "writer", "writer_since"])
        if upload.offset == upload.length:
            _complete(upload)
        return upload


def _complete(upload: Upload) -> None:
    """All bytes are in: hand the file to the parse task (on commit)."""
    Upload.objects.filter(pk=upload.pk, state=Upload.State.UPLOADING).update(state=Upload.State.COMPLETE)
    upload.state = Upload.State.COMPLETE
    _enqueue_parse(upload.id)


def _enqueue_parse(upload_id) -> None:
    from apks.tasks import parse_upload

    transaction.on_commit(lambda: parse_upload.delay(str(upload_id)))


@transaction.atomic
def terminate_upload(*, upload: Upload) -> None:
    """tus termination: the upload and its bytes go (a release made from it stays)."""
    locked = Upload.objects.select_for_update().filter(pk=upload.pk).first()
    if locked is None:
        return
    if locked.state in (Upload.State.COMPLETE, Upload.State.PARSING):
        raise UploadError(409, "upload_busy", "The upload is being turned into a release: ask /result.")
    locked.delete()
    transaction.on_commit(lambda: remove_staging(upload.pk))


def ingest_upload(*, upload_id) -> Upload | None:
    """The parse task's work, once it holds the PARSING claim: the staged file becomes a
    release, or the upload is refused with the reason (the file is kept only for a signer
    change, which an admin may still confirm)."""
    upload = Upload.objects.select_related("created_by").filter(pk=upload_id, state=Upload.State.PARSING).first()
    if upload is None:
        return None
    meta = upload.metadata
    uploader = releases.Uploader(actor=upload.created_by or upload.created_by_label, user=upload.created_by, via=upload.via,
                                 is_admin=bool(upload.created_by and upload.created_by.is_admin_role))
    confirmer = None
    if upload.allow_signer_change:
        confirmer = upload.signer_confirmed_by or upload.signer_confirmed_by_label
    try:
        release = releases.create_release(
            path=_staging(upload.id), uploader=uploader, channel=meta.get("channel") or "stable", notes=meta.get("notes", ""),
            filename=meta.get("filename", ""), signer_change_confirmed_by=confirmer,
        )
    except Refused as refused:
        Upload.objects.filter(pk=upload.pk).update(state=Upload.State.REFUSED, refusal_code=refused.code, refusal_detail=refused.detail)
        audit.record(actor=uploader.actor, action="apk.refuse", target=("upload", str(upload.pk)),
                     data={"code": refused.code, "filename": meta.get("filename", "")})
        if refused.code != "signer_changed":
            remove_staging(upload.pk)
        return Upload.objects.get(pk=upload.pk)
    except Exception:
        # Storage or database trouble: back to COMPLETE, so the reaper's next round tries again.
        Upload.objects.filter(pk=upload.pk, state=Upload.State.PARSING).update(state=Upload.State.COMPLETE, parse_started_at=None)
        raise
    Upload.objects.filter(pk=upload.pk).update(state=Upload.State.DONE, release=release, refusal_code="", refusal_detail="")
    remove_staging(upload.pk)
    return Upload.objects.get(pk=upload.pk)


def claim_parse(*, upload_id, now=None) -> bool:
    """The parse task's claim (STYLE.md: a conditional update; a duplicate task finds nothing)."""
    return bool(Upload.objects.filter(pk=upload_id, state=Upload.State.COMPLETE)
                .update(state=Upload.State.PARSING, parse_started_at=now or timezone.now()))


@transaction.atomic
def confirm_signer_change(*, actor, upload: Upload, ip: str | None = None) -> Upload:
    """An admin confirms that a refused upload's new signer is meant: parsed again, allowed."""
    locked = Upload.objects.select_for_update().filter(pk=upload.pk).first()
    if locked is None or locked.state != Upload.State.REFUSED or locked.refusal_code != "signer_changed":
        raise UploadError(409, "not_signer_changed", "Only an upload refused for a signer change can be confirmed.")
    if not os.path.exists(_staging(locked.pk)):
        raise UploadError(410, "expired", "The upload's file is gone (expired): upload it again.")
    locked.state, locked.allow_signer_change = Upload.State.COMPLETE, True
    locked.signer_confirmed_by = actor if getattr(actor, "pk", None) else None
    locked.signer_confirmed_by_label = audit.actor_label(actor)
    locked.refusal_code = locked.refusal_detail = ""
    locked.save(update_fields=["state", "allow_signer_change", "signer_confirmed_by", "signer_confirmed_by_label",
                               "refusal_code", "refusal_detail"])
    audit.record(actor=actor, action="apk.confirm_signer_change", target=("upload", str(locked.pk)),
                 data={"filename": locked.filename}, ip=ip)
    _enqueue_parse(locked.pk)
    return locked


def reap_uploads(*, now=None) -> dict:
    """Beat's round: expired uploads go with their files; a parse that died is tried again."""
    now = now or timezone.now()
    expired = list(Upload.objects.filter(expires_at__lte=now).exclude(state__in=[Upload.State.COMPLETE, Upload.State.PARSING])
                   .values_list("pk", flat=True)[:1000])
    for upload_id in expired:
        if Upload.objects.filter(pk=upload_id, expires_at__lte=now).exclude(state__in=[Upload.State.COMPLETE, Upload.State.PARSING]).delete()[0]:
            remove_staging(upload_id)
    stuck = Upload.objects.filter(state=Upload.State.PARSING, parse_started_at__lt=now - PARSE_STALE)
    retried = list(stuck.values_list("pk", flat=True))
    stuck.update(state=Upload.State.COMPLETE, parse_started_at=None)
    waiting = list(Upload.objects.filter(state=Upload.State.COMPLETE).values_list("pk", flat=True)[:100])
    from apks.tasks import parse_upload

    for upload_id in waiting:
        parse_upload.delay(str(upload_id))
    return {"expired": len(expired), "retried": len(retried), "queued": len(waiting)}


def decode_checksum(header: str | None) -> tuple[str, bytes] | None:
    """Upload-Checksum: "<algorithm> <base64 digest>"; UploadError 400 when it cannot be used."""
    if header is None:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise UploadError(400, "checksum_algorithm", f"Unsupported checksum algorithm; one of {', '.join(CHECKSUMS)}.")
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raise UploadError(400, "invalid", "Upload-Checksum: the digest is not base64.") from None
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise UploadError(400, "invalid", f"Upload-Checksum: a {algorithm} digest has {CHECKSUMS[algorithm]().digest_size} bytes.")
    return algorithm, digest
