"""POST /api/v1/enroll (PROTOCOL.md): a lean plain view like the other device endpoints."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import get_usage

from devices.api.body import method_not_allowed, read_json_object, shed_load
from enrollment import admission, conf, services
from mdm.api import error
from mdm.audit import client_ip

OPTIONAL_TEXT = {"serial": 128, "model": 128, "manufacturer": 128, "android_version": 32, "agent_version": 64, "fcm_token": 512}


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
    hardware_id, info, fields = _clean(data)
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
                ip=client_ip(request),
            )
        except services.EnrollRefused as refused:
            headers = {"Retry-After": "1"} if refused.status == 503 else None
            return _refused(error(refused.detail, refused.code, refused.status, headers), refused.code)
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
    return token.strip() if scheme == "Device" and token.strip() else None


def _clean(data: dict) -> tuple[str, dict, dict]:
    fields: dict[str, list[str]] = {}
    hardware_id = data.get("hardware_id")
    if not isinstance(hardware_id, str) or not 1 <= len(hardware_id.strip()) <= 128 or "\x00" in hardware_id:
        fields["hardware_id"] = ["hardware_id: required, 1-128 characters."]
        hardware_id = ""
    info = {}
    for name, max_len in OPTIONAL_TEXT.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > max_len or "\x00" in value:
            fields[name] = [f"{name}: text of at most {max_len} characters."]
        else:
            info[name] = value
    sdk_int = data.get("sdk_int")
    if sdk_int is not None:
        if isinstance(sdk_int, bool) or not isinstance(sdk_int, int) or not 1 <= sdk_int <= 1000:
            fields["sdk_int"] = ["sdk_int: an integer between 1 and 1000."]
        else:
            info["sdk_int"] = sdk_int
    return hardware_id.strip(), info, fields
