"""Reads of the APK app (STYLE.md: reusable reads, one scoping helper)."""

from apks.models import Release


def releases_for(request):
    """Every release for a signed-in user or an API key with apk:read or apk:upload; none otherwise."""
    key = getattr(request, "auth", None)
    if getattr(key, "has_scope", None) and (key.has_scope("apk:read") or key.has_scope("apk:upload")):
        return Release.objects.all()
    return Release.objects.for_user(request.user)
