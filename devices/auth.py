"""Authentication for the device API (`Authorization: Device <token>`), kept out of DRF so the
heartbeat path stays cheap."""

from functools import wraps

from mdm.api import error
from devices import tokens


def device_id_from_request(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme != "Device" or not token:
        return None
    return tokens.verify(token.strip())


def device_required(view):
    """Sets request.device_id (a str UUID) or answers 401 token_invalid."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        device_id = device_id_from_request(request)
        if device_id is None:
            return error("Missing or invalid device token.", "token_invalid", 401)
        request.device_id = device_id
        return view(request, *args, **kwargs)

    return wrapped
