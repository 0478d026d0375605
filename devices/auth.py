"""Authentication for the device API (`Authorization: Device <token>`), kept out of DRF so the
heartbeat path stays cheap."""

from functools import wraps

from mdm.api import error
from devices import tokens


def presented_token(request) -> str | None:
    """The token of `Authorization: Device <token>`, unverified, or None."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    return token if scheme == "Device" and token else None


def device_id_from_request(request) -> str | None:
    token = presented_token(request)
    return tokens.verify(token) if token else None


def token_invalid():
    return error("Missing or invalid device token.", "token_invalid", 401)


def refused(token: str, answer):
    """A request refused before its token was checked (the views that check it inside their own
    Redis call): 401 first for a bad token, as device_required answers, else the refusal."""
    return answer if tokens.verify(token) else token_invalid()


def device_required(view):
    """Sets request.device_id (a str UUID) or answers 401 token_invalid."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        device_id = device_id_from_request(request)
        if device_id is None:
            return token_invalid()
        request.device_id = device_id
        return view(request, *args, **kwargs)

    return wrapped
