from django import template
from django.contrib.staticfiles import finders

register = template.Library()


@register.simple_tag
def static_exists(path: str) -> bool:
    """Whether a static file is there (the uploader's bundle is built on another branch: until it
    is merged, the page shows the mount point without loading a missing script)."""
    return finders.find(path) is not None


@register.filter
def filesize(value) -> str:
    size = float(value or 0)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)
