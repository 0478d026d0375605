"""Hypothesis over what tus clients and devices send: the tus headers and bodies, and the
download's Range header. Never a 5xx; every 4xx a JSON {detail, code}; the offset only moves
by what was accepted; a 206 is exactly the bytes it says."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apks import ranges, tusproto
from apks.models import Upload
from apks.tests.conftest import apk, jwt_auth

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_SEED" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# What a header can carry through WSGI (latin-1), without the line breaks that end it.
header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255, blacklist_characters="\r\n"), max_size=80)
numbers = st.one_of(st.integers(min_value=-5, max_value=2**64).map(str), header_text,
                    st.sampled_from(["", " 1", "+1", "1_0", "١", "1e3", "0x10", "9" * 30]))
metadata = st.one_of(
    header_text,
    st.lists(st.tuples(st.sampled_from(["filename", "channel", "notes", "filetype", "x y", "", "é"]),
                       st.one_of(st.binary(max_size=40).map(lambda b: __import__("base64").b64encode(b).decode()), header_text)),
             max_size=4).map(lambda pairs: ",".join(f"{k} {v}" for k, v in pairs)),
)


def assert_answer(response):
    assert response.status_code < 500, (response.status_code, getattr(response, "content", b"")[:300])
    if response.status_code >= 400 and response.request["REQUEST_METHOD"] != "HEAD":
        body = response.json()
        assert isinstance(body.get("detail"), str) and isinstance(body.get("code"), str)


@given(value=header_text)
@FUZZ
def test_header_parsers_accept_or_say_why(value):
    for parse in (lambda v: tusproto.number(v, "Upload-Length"), tusproto.metadata):
        try:
            parse(value)
        except ValueError as exc:
            assert str(exc)


@given(length=numbers, meta=st.one_of(st.none(), metadata), version=st.sampled_from(["1.0.0", "1.0.0", "0.2.2", "", None]),
       defer=st.booleans())
@FUZZ
def test_creation_never_breaks(client, admin_user, length, meta, version, defer):
    headers = {**jwt_auth(admin_user), "HTTP_UPLOAD_LENGTH": length}
    if meta is not None:
        headers["HTTP_UPLOAD_METADATA"] = meta
    if version is not None:
        headers["HTTP_TUS_RESUMABLE"] = version
    if defer:
        headers["HTTP_UPLOAD_DEFER_LENGTH"] = "1"
    response = client.post("/api/v1/uploads/", **headers)
    assert_answer(response)
    if response.status_code == 201:
        upload = Upload.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[-1])
        assert str(upload.length) == length.strip() and set(upload.metadata) <= {"filename", "channel", "notes"}


@given(offset=numbers, body=st.binary(max_size=3000), content_type=st.sampled_from(["application/offset+octet-stream", "text/plain", ""]),
       checksum=st.one_of(st.none(), header_text, st.sampled_from(["sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "sha256 ", "md5 x"])),
       method=st.sampled_from(["PATCH", "PATCH", "HEAD", "DELETE", "GET", "PUT", "OPTIONS"]), override=st.one_of(st.none(), header_text))
@FUZZ
def test_patches_never_break_and_the_offset_moves_only_by_what_was_taken(client, admin_user, django_capture_on_commit_callbacks,
                                                                        offset, body, content_type, checksum, method, override):
    auth = {**jwt_auth(admin_user), "HTTP_TUS_RESUMABLE": "1.0.0"}
    created = client.post("/api/v1/uploads/", HTTP_UPLOAD_LENGTH="2000", **auth)
    url = created["Location"]
    headers = {**auth, "HTTP_UPLOAD_OFFSET": offset}
    if checksum is not None:
        headers["HTTP_UPLOAD_CHECKSUM"] = checksum
    if override is not None:
        headers["HTTP_X_HTTP_METHOD_OVERRIDE"] = override
    with django_capture_on_commit_callbacks(execute=True):
        response = client.generic(method, url, body, content_type=content_type, **headers)
    assert_answer(response)
    upload = Upload.objects.filter(pk=url.rsplit("/", 1)[-1]).first()
    if upload is not None:
        assert upload.offset in (0, len(body))
        assert upload.staging_path.stat().st_size == upload.offset or upload.state != Upload.State.UPLOADING
        assert upload.writer == ""  # every claim given back


# --- the download's Range -------------------------------------------------------------------
range_headers = st.one_of(
    header_text,
    st.builds(lambda a, b, unit: f"{unit}={a}-{b}", st.one_of(st.just(""), st.integers(0, 10**25).map(str)),
              st.one_of(st.just(""), st.integers(0, 10**25).map(str)), st.sampled_from(["bytes", "Bytes", "items"])),
)


@given(header=range_headers, size=st.integers(0, 10**6), if_range=st.one_of(st.none(), st.just('"abc"'), header_text))
@FUZZ
def test_byte_range_is_whole_inside_or_unsatisfiable(header, size, if_range):
    try:
        span = ranges.byte_range(header, size, if_range=if_range, etag='"abc"')
    except ranges.Unsatisfiable:
        return
    if span is not None:
        first, last = span
        assert 0 <= first <= last < size


@given(header=range_headers, if_range=st.one_of(st.none(), st.just("etag"), header_text))
@FUZZ
def test_a_download_with_any_range_is_the_bytes_it_says(client, release, enrolled_device, install, header, if_range):
    from commands.models import Command

    if not Command.objects.filter(params__apk_id=str(release.id)).exists():  # once: fixtures outlive examples
        install(release, enrolled_device.device)
    data = apk("app-v10").read_bytes()
    headers = {**enrolled_device.auth, "HTTP_RANGE": header}
    if if_range is not None:
        headers["HTTP_IF_RANGE"] = f'"{release.sha256}"' if if_range == "etag" else if_range
    response = client.get(f"/api/v1/device/apks/{release.id}/download", **headers)
    assert response.status_code in (200, 206, 416), response.status_code
    if response.status_code == 416:
        assert response.json()["code"] == "range_not_satisfiable"
        return
    content = b"".join(response.streaming_content)
    assert response["Content-Length"] == str(len(content))
    if response.status_code == 200:
        assert content == data
    else:
        first, last, total = map(int, response["Content-Range"].removeprefix("bytes ").replace("/", "-").split("-"))
        assert total == len(data) and content == data[first:last + 1]
