from django.urls import path


def slash_optional(route: str, view, name: str | None = None) -> list:
    """PROTOCOL.md: every device/API path works with and without a trailing slash (a POST cannot
    follow APPEND_SLASH's redirect), so each route is registered both ways."""
    route = route.rstrip("/")
    return [path(route, view, name=name), path(route + "/", view)]
