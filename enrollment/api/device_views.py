"""POST /api/v1/enroll (PROTOCOL.md): a lean plain view like the other device endpoints."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import get_usage

from devices.api.body import method_not_allowed, read_json_object, shed_load
from devices.models import Device
from enrollment import admission, conf
from enrollment.services import enroll as services
from mdm import text
from mdm.api import error
from mdm.audit import client_ip

STORED_TEXT = ("hardware_id", "serial", "model", "manufacturer", "android_version", "agent_version", "fcm_token")
# PROTOCOL.md v1.1 lengths (mdm.text), held to the columns that store them: a value the protocol
# admits but a column cannot hold would fail at save. Where a column is narrower the column wins
# (today fcm_token: 512 of the protocol's 4,096; android_version 32, agent_version 64, the rest 128);
# widening a column widens what enrollment admits.
MAX_LENGTHS = {name: min(text.max_length(name), Device._meta.get_field(name).max_length) for name in STORED_TEXT}


@csrf_exempt
@shed_load
def enroll(request):
    if request.method != "POST":
        return method_not_allowed("POST")
    raw_key = request.META.get("HTTP_X_ADMIN_KEY", "").strip()
    if not raw_key or len(raw_key) > 200:  # no credentials: refused before anything is read
        return _refused(error("Missing or invalid X-Admin-Key.", "key_invalid", 401), "key_invalid")
    data = read_json_object(request)
    if isinstance(data, JsonResponse):
        return _refused(data, "invalid" if data.status_code == 400 else "too_large")
    limited = _rate_limited(request)
    if limited is not None:
        return _refused(limited, "rate_limited")
    hardware_id, info, reenroll_request, fields = _clean(data)
    if fields:
        return _refused(error(next(iter(fields.values()))[0], "invalid", 400, fields=fields), "invalid")
    with admission.admitted() as admitted:
        if not admitted:
            retry = conf.get("ENROLL_BUSY_RETRY_AFTER_S")
            busy = error("Enrollment queue full, retry later.", "busy", 503, {"Retry-After": str(retry)})
            return _refused(busy, "busy")
        try:
            enrolled = services.enroll_device(
                raw_key=raw_key,
                hardware_id=hardware_id,
                info=info,
                presented_token=_presented_token(request),
                reenroll_request=reenroll_request,
                ip=client_ip(request),
            )
        except services.EnrollRefused as refused:
            headers = {"Retry-After": "1"} if refused.status == 503 else None
            return _refused(error(refused.detail, refused.code, refused.status, headers, **refused.extra), refused.code)
    services.count_enrollment(enrolled.outcome)
    return JsonResponse(enrolled.answer, status=enrolled.status)


def _refused(response, code: str):
    services.count_enrollment(code)
    return response


def _rate_limited(request):
    usage = get_usage(request, group="enroll", key="ip", rate=conf.get("ENROLL_RATE_LIMIT"), method="POST", increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    retry = max(1, int(usage["time_left"]))
    return error("Too many enrollments from this address.", "rate_limited", 429, {"Retry-After": str(retry)})


def _presented_token(request) -> str | None:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    # Rule 1 only: a malformed token is no token (never an error, never a lookup).
    return token if scheme == "Device" and token and text.is_clean(token) else None


def _clean(data: dict) -> tuple[str, dict, str | None, dict]:
    """The hardware id, the optional fields to store, the re-enrollment request id, and the
    v1.1 text problems by field (each a 400 `invalid` naming it)."""
    fields: dict[str, list[str]] = {}
    hardware_id = data.get("hardware_id")
    if hardware_id is None or (isinstance(hardware_id, str) and not hardware_id.strip()):
        problem = "hardware_id: required, 1-128 characters."
    else:
        problem = text.problem(hardware_id, "hardware_id", max_len=MAX_LENGTHS["hardware_id"])
    if problem is not None:
        fields["hardware_id"] = [problem]
        hardware_id = ""
    info = {}
    for name in STORED_TEXT[1:]:
        value = data.get(name)
        if value is None:
            continue
        problem = text.problem(value, name, max_len=MAX_LENGTHS[name])
        if problem is not None:
            fields[name] = [problem]
        else:
            info[name] = value
    sdk_int = data.get("sdk_int")
    if sdk_int is not None:
        if isinstance(sdk_int, bool) or not isinstance(sdk_int, int) or not 1 <= sdk_int <= 1000:
            fields["sdk_int"] = ["sdk_int: an integer between 1 and 1000."]
        else:
            info["sdk_int"] = sdk_int
    reenroll_request = data.get("reenroll_request")
    if reenroll_request is not None:
        problem = text.problem(reenroll_request, "reenroll_request")
        if problem is not None:
            fields["reenroll_request"] = [problem]
            reenroll_request = None
    return hardware_id.strip(), info, reenroll_request, fields
