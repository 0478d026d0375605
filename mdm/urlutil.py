from django.urls import path
from rest_framework.routers import SimpleRouter


def slash_optional(route: str, view, name: str | None = None) -> list:
    """PROTOCOL.md: every device/API path works with and without a trailing slash (a POST cannot
    follow APPEND_SLASH's redirect), so each route is registered both ways."""
    route = route.rstrip("/")
    return [path(route, view, name=name), path(route + "/", view)]


class OptionalSlashRouter(SimpleRouter):
    """A DRF router whose routes match with and without the trailing slash (see above)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trailing_slash = "/?"
