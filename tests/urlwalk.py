"""Every route of the project as a concrete path, for tests that must hold on every endpoint
(outsiders refused everywhere, viewers never write)."""

import re
import uuid

from django.urls import URLPattern, URLResolver, get_resolver

SAMPLE = {"uuid": str(uuid.UUID(int=1)), "int": "1", "str": "x", "slug": "x", "path": "x"}
NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _concrete(pattern) -> str | None:
    if hasattr(pattern, "_route"):  # path()
        route = pattern._route
        return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: SAMPLE.get(m.group(1) or "str", "x"), route)
    regex = pattern._regex  # re_path(): only simple DRF-style patterns
    text = regex.lstrip("^").rstrip("$").replace("/?", "/").replace("\\.", ".")
    text = NAMED_GROUP.sub(lambda m: SAMPLE["uuid"] if m.group(1) in ("id", "pk") or m.group(1).endswith("_id") else "x", text)
    if re.search(r"[()\[\]*+?{}|\\]", text):
        return None
    return text


def all_routes():
    """Yields (path, name) for every route reachable from ROOT_URLCONF."""

    def walk(patterns, prefix):
        for p in patterns:
            part = _concrete(p.pattern)
            if part is None:
                continue
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + part)
            elif isinstance(p, URLPattern):
                yield "/" + prefix + part, p.name

    seen = set()
    for path, name in walk(get_resolver().url_patterns, ""):
        if path not in seen:
            seen.add(path)
            yield path, name
