from django.conf import settings


def console(request):
    user = getattr(request, "user", None)
    return {
        "role": getattr(user, "effective_role", None) if user is not None and user.is_authenticated else None,
        "embedded": settings.EMBEDDED,
    }
