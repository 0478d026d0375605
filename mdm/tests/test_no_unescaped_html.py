"""No user data reaches HTML unescaped (issue 14, finding 4). The code and the templates are read
for every way around Django's autoescaping: an HTML response built from an f-string, `%` or
`.format()`, `mark_safe`/`SafeString`, `format_html` given a pre-formatted string, and `|safe`,
`|safeseq` or `{% autoescape off %}` in templates. A new one fails here until it is either
escaped or reviewed and added to the allowlist below, with the reason it is safe."""

import ast
import re
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
APPS = ("mdm", "accounts", "enrollment", "devices", "commands", "apks")

# (file, what, where) -> why it is safe. `where` is the enclosing function (Python) or the
# template's text around the match.
ALLOWED = {
    ("devices/charts.py", "mark_safe", "line_chart"): "SVG of numbers the server computes; label and colour escaped",
    ("accounts/permissions.py", "HttpResponse", "_refused"): "the role name is a constant from the code",
    ("mdm/views.py", "HttpResponse", "metrics"): "Prometheus text exposition (text/plain), written by prometheus_client",
    ("mdm/dashboard_charts.py", "mark_safe", "online_chart"): "SVG of numbers and dates the server computes; label escaped",
    ("mdm/dashboard_charts.py", "mark_safe", "commands_chart"): "SVG of counts and dates; class names are constants; label escaped",
    ("templates/enrollment/_qr_form.html", "|safe", "{{ svg|safe }}"): "segno's SVG: the payload is drawn as modules, never as text",
    # Shell scripts served as text/plain: every value is quoted for its shell (provisioning.render_script).
    ("templates/enrollment/provision.sh", "autoescape off", "{% autoescape off %}"): "bash script, values shlex-quoted",
    ("templates/enrollment/provision.ps1", "autoescape off", "{% autoescape off %}"): "PowerShell script, values quoted",
    # The plain-text part of an alert e-mail (text/plain): HTML escaping would garble device names.
    ("templates/alerts/email.txt", "autoescape off", "{% autoescape off %}"): "text/plain e-mail body",
}

HTML_RESPONSES = {"HttpResponse", "HttpResponseBadRequest", "HttpResponseForbidden", "HttpResponseNotFound",
                  "HttpResponseNotAllowed", "HttpResponseServerError", "HttpResponseGone"}
ESCAPING_CALLS = {"escape", "conditional_escape", "format_html", "format_html_join", "render_to_string", "escapejs"}
TEMPLATE_BYPASSES = re.compile(r"\{\{[^}]*\|\s*safe(seq)?\b[^}]*\}\}|\{%\s*autoescape\s+off\s*%\}|\{%\s*filter\s+safe")


def _python_files():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if "/tests/" in rel or "/migrations/" in rel:
                continue
            yield rel, path


def _template_files():
    for base in [ROOT / "templates", *(ROOT / app / "templates" for app in APPS)]:
        if base.exists():
            for path in base.rglob("*"):
                if path.is_file():
                    yield path.relative_to(ROOT).as_posix(), path


def _name(func) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _is_constant_text(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))


def _is_built_string(node) -> bool:
    """An f-string, `%` formatting, `.format()` or `+` concatenation that is not all constants."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return not (_is_constant_text(node.left) and _is_constant_text(node.right))
    return isinstance(node, ast.Call) and _name(node.func) == "format"


def _kwarg(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def findings_in_python(rel: str, source: str):
    tree = ast.parse(source)
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def enclosing(node) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not isinstance(parents.get(node), (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node.name
        return "<module>"

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        content = node.args[0] if node.args else _kwarg(node, "content")
        if name in HTML_RESPONSES and content is not None:
            content_type = _kwarg(node, "content_type")
            not_html = _is_constant_text(content_type) and "html" not in content_type.value
            escaped = isinstance(content, ast.Call) and _name(content.func) in ESCAPING_CALLS
            if not (_is_constant_text(content) or escaped or not_html):
                yield name, enclosing(node), node.lineno
        elif name in ("mark_safe", "SafeString"):
            yield name, enclosing(node), node.lineno
        elif name in ("format_html", "format_html_join") and node.args:
            template = node.args[0] if name == "format_html" else (node.args[1] if len(node.args) > 1 else None)
            if template is not None and not _is_constant_text(template):
                yield f"{name} with a built template", enclosing(node), node.lineno


def findings_in_template(text: str):
    for match in TEMPLATE_BYPASSES.finditer(text):
        what = "|safe" if "safe" in match.group(0) and "autoescape" not in match.group(0) else "autoescape off"
        yield what, match.group(0), text.count("\n", 0, match.start()) + 1


def test_no_html_is_built_from_unescaped_values():
    found = []
    for rel, path in _python_files():
        for what, where, line in findings_in_python(rel, path.read_text()):
            if (rel, what, where) not in ALLOWED:
                found.append(f"{rel}:{line} {what} in {where}")
    for rel, path in _template_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for what, where, line in findings_in_template(text):
            if (rel, what, where) not in ALLOWED:
                found.append(f"{rel}:{line} {what}: {where}")
    assert not found, "Unescaped HTML (escape it, or review it and add it to ALLOWED with the reason):\n" + "\n".join(found)


def test_every_allowlisted_use_still_exists():
    """An allowlist entry whose code is gone is removed, so it cannot silently cover a new one."""
    present = set()
    for rel, path in _python_files():
        present |= {(rel, what, where) for what, where, _ in findings_in_python(rel, path.read_text())}
    for rel, path in _template_files():
        try:
            present |= {(rel, what, where) for what, where, _ in findings_in_template(path.read_text())}
        except UnicodeDecodeError:
            pass
    assert set(ALLOWED) <= present, set(ALLOWED) - present


@pytest.mark.parametrize(
    "source",
    [
        "from django.http import HttpResponse\ndef v(r, d):\n    return HttpResponse(f'<td>{d.name}</td>')\n",
        "from django.http import HttpResponse\ndef v(r, d):\n    return HttpResponse('<td>%s</td>' % d.name)\n",
        "from django.http import HttpResponse\ndef v(r, d):\n    return HttpResponse('<td>{}</td>'.format(d.name))\n",
        "from django.http import HttpResponse\ndef v(r, d):\n    return HttpResponse('<td>' + d.name + '</td>', status=400)\n",
        "from django.utils.safestring import mark_safe\ndef v(d):\n    return mark_safe(d)\n",
        "from django.utils.html import format_html\ndef v(d):\n    return format_html(f'<b>{d}</b>')\n",
    ],
)
def test_the_check_catches_each_way_around_escaping(source):
    assert list(findings_in_python("x.py", source))


@pytest.mark.parametrize(
    "source",
    [
        "from django.http import HttpResponse\ndef v(r, d):\n    return HttpResponse(format_html('<td>{}</td>', d.name))\n",
        "from django.http import HttpResponse\ndef v(r, d):\n    return HttpResponse(f'{d.name}', content_type='text/plain')\n",
        "from django.http import HttpResponse\ndef v(r):\n    return HttpResponse('Only admins.', status=403)\n",
    ],
)
def test_the_check_passes_escaped_or_plain_text_answers(source):
    assert not list(findings_in_python("x.py", source))


@pytest.mark.parametrize("text", ["{{ x|safe }}", "{{ x | safeseq }}", "{% autoescape off %}{{ x }}{% endautoescape %}"])
def test_the_check_catches_template_bypasses(text):
    assert list(findings_in_template(text))


# --- the finding itself -----------------------------------------------------------------------

XSS = '<script>alert("x")</script>'


def test_restoring_a_device_escapes_its_alias(client, admin_user, device_in_group_a):
    from devices import services

    device_in_group_a.alias = XSS
    device_in_group_a.save(update_fields=["alias"])
    services.delete_devices(actor=admin_user, device_ids=[device_in_group_a.pk])
    client.force_login(admin_user)
    response = client.post(reverse("devices:restore", args=[device_in_group_a.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; restored" in body


def test_restoring_a_device_escapes_the_model_it_reported(client, admin_user, device_in_group_a):
    """With no alias the name is what the device reported: not the operator's to vet."""
    from devices import services

    device_in_group_a.alias, device_in_group_a.manufacturer, device_in_group_a.model = "", "<img src=x", "onerror=alert(1)>"
    device_in_group_a.save(update_fields=["alias", "manufacturer", "model"])
    services.delete_devices(actor=admin_user, device_ids=[device_in_group_a.pk])
    client.force_login(admin_user)
    body = client.post(reverse("devices:restore", args=[device_in_group_a.pk])).content.decode()
    assert "<img" not in body and "&lt;img src=x onerror=alert(1)&gt; restored" in body
