"""The layer rule (docs/ARCHITECTURE.md, "Layers"), checked on every project .py file with `ast`,
imports inside functions included: no import circle between apps, and no app importing one above
its layer. The rule is the data below; a new top-level package fails here until it has a layer.

What it cannot see: dotted paths in strings (INSTALLED_APPS, `include("x.urls")`, Celery task
names, settings' class paths) and templates. Tests, conftest files and the benchmark harness are
tooling, not the product: they may import anything and are not checked."""

import ast
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Low to high. A module may import from its own layer or below, never from above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mdm.platform",),  # every mdm module that is not project wiring: audit, metrics, fastpath, sql, ...
    ("accounts",),
    ("devices",),
    ("commands",),
    ("enrollment",),
    ("apks",),
    ("mdm.project", "loadtest"),  # the wiring that composes the apps, and the dev/bench tools
)
# mdm's project wiring: settings, URLs, the ASGI/WSGI and Celery entry points, and the views and
# consumers that compose several apps. The rest of mdm/ is platform and imports no app.
MDM_PROJECT = frozenset({
    "mdm", "mdm.settings", "mdm.urls", "mdm.asgi", "mdm.wsgi", "mdm.celery", "mdm.embedded", "mdm.routing",
    "mdm.consumers", "mdm.views", "mdm.dashboard", "mdm.ops_api", "mdm.alerts",
})
# Tooling that only tests or measures the product: exempt from the rule.
TOOLING_TOP = frozenset({"tests", "bench", "scripts", "conftest", "manage"})
SKIP_DIRS = frozenset({"node_modules", "var", "media", "staticfiles", "android-agent", "__pycache__"})


@dataclass(frozen=True)
class Import:
    source: str  # unit of the importing module
    target: str  # unit of the imported module
    where: str  # path:line


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    """Every .py file under root (outside hidden and build directories), by dotted module name."""
    found = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in files:
            if name.endswith(".py"):
                path = Path(directory) / name
                found[_module_name(path, root)] = path
    return found


def unit_of(module: str) -> str | None:
    """The layer-table unit a module belongs to; None for tooling (exempt)."""
    parts = module.split(".")
    if parts[0] in TOOLING_TOP or "tests" in parts:
        return None
    if parts[0] == "mdm":
        return "mdm.project" if ".".join(parts[:2]) in MDM_PROJECT else "mdm.platform"
    return parts[0]


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: resolved against the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    # `from pkg import mod` imports the submodule pkg.mod when there is one.
    return [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]


def imports_between_units(root: Path) -> list[Import]:
    """Every import, at any depth of a module, from one unit into another."""
    modules = project_modules(root)
    tops = {name.split(".")[0] for name in modules}
    found = []
    for module, path in sorted(modules.items()):
        source = unit_of(module)
        if source is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = _imported_names(node, module, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):
                # the submodules that exist, else the package itself
                names = [n for n in names[1:] if n in modules] or names[:1]
            for name in names:
                if name.split(".")[0] not in tops:
                    continue  # the standard library or a third-party package
                target = unit_of(name)
                if target is not None and target != source:
                    found.append(Import(source, target, f"{path.relative_to(root)}:{node.lineno}"))
    return found


def layer_index(layers) -> dict[str, int]:
    return {unit: i for i, layer in enumerate(layers) for unit in layer}


def unplaced_units(root: Path, layers) -> set[str]:
    units = {unit_of(m) for m in project_modules(root)} - {None}
    return units - set(layer_index(layers))


def upward_imports(imports: list[Import], layers) -> list[Import]:
    rank = layer_index(layers)
    return [i for i in imports if i.source in rank and i.target in rank and rank[i.target] > rank[i.source]]


def import_circles(imports: list[Import]) -> list[list[str]]:
    """The groups of units that import each other in a circle (strongly connected components of
    more than one unit, Tarjan's algorithm)."""
    graph = defaultdict(set)
    for i in imports:
        graph[i.source].add(i.target)
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(unit):
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        on_stack.add(unit)
        for nxt in sorted(graph[unit]):
            if nxt not in index:
                visit(nxt)
                low[unit] = min(low[unit], low[nxt])
            elif nxt in on_stack:
                low[unit] = min(low[unit], index[nxt])
        if low[unit] == index[unit]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == unit:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for unit in sorted(list(graph)):
        if unit not in index:
            visit(unit)
    return circles


def _explain(imports: list[Import], circle: list[str]) -> str:
    return "\n".join(f"  {i.source} -> {i.target} at {i.where}" for i in imports if i.source in circle and i.target in circle)


# --- the project ------------------------------------------------------------------------------

def test_every_app_and_mdm_module_has_a_layer():
    assert unplaced_units(ROOT, LAYERS) == set(), "add the new package to LAYERS (and docs/ARCHITECTURE.md)"


def test_no_import_circle_between_apps():
    imports = imports_between_units(ROOT)
    circles = import_circles(imports)
    assert not circles, "\n".join(f"{' <-> '.join(c)}:\n{_explain(imports, c)}" for c in circles)


def test_no_app_imports_one_above_its_layer():
    upward = upward_imports(imports_between_units(ROOT), LAYERS)
    assert not upward, "\n".join(f"{i.where}: {i.source} imports {i.target}, a higher layer" for i in upward)


def test_the_platform_and_accounts_import_no_app():
    imports = imports_between_units(ROOT)
    assert [i for i in imports if i.source in ("mdm.platform", "accounts") and i.target not in ("mdm.platform",)] == []


# --- the checker on a planted violation -------------------------------------------------------

def _plant(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "mdm/__init__.py": "from .celery import app\n",
    "mdm/celery.py": "import celery\n",
    "mdm/audit.py": "from django.db import models\n",
    "mdm/urls.py": "from commands import views\nfrom loadtest import views as naive\n",
    "accounts/__init__.py": "",
    "accounts/services.py": "from mdm import audit\n",
    "devices/__init__.py": "",
    "devices/hooks.py": "UNREAD = object()\n",
    "devices/services.py": "from devices import hooks\nfrom accounts import services\n",
    "commands/__init__.py": "",
    "commands/services/__init__.py": "from .keys import rotate\n",
    "commands/services/keys.py": "from devices.hooks import UNREAD\nfrom ..models import Key\n",
    "commands/models.py": "",
    "commands/views.py": "from . import services\n",
    "commands/tests/test_x.py": "from loadtest import simulator\n",  # tests are tooling
    "enrollment/__init__.py": "",
    "apks/__init__.py": "",
    "loadtest/__init__.py": "",
    "mdm/fcm.py": "import httpx\n",
    "loadtest/views.py": "from mdm import fcm\nfrom commands import services\n",
    "tests/live.py": "from mdm import settings\n",
}


def test_the_checker_finds_nothing_in_a_clean_house(tmp_path):
    root = _plant(tmp_path, CLEAN)
    imports = imports_between_units(root)
    assert {(i.source, i.target) for i in imports} == {
        ("mdm.project", "commands"), ("mdm.project", "loadtest"), ("accounts", "mdm.platform"), ("devices", "accounts"),
        ("commands", "devices"), ("loadtest", "mdm.platform"), ("loadtest", "commands"),
    }
    assert unplaced_units(root, LAYERS) == set()
    assert import_circles(imports) == [] and upward_imports(imports, LAYERS) == []


def test_the_checker_catches_a_circle_made_inside_a_function(tmp_path):
    root = _plant(tmp_path, {**CLEAN, "devices/services.py": "def beat():\n    from commands.services import keys\n"})
    imports = imports_between_units(root)
    assert import_circles(imports) == [["commands", "devices"]]
    assert [(i.source, i.target, i.where) for i in upward_imports(imports, LAYERS)] == [
        ("devices", "commands", "devices/services.py:2")
    ]


def test_the_checker_catches_the_platform_or_accounts_importing_an_app(tmp_path):
    root = _plant(tmp_path, {**CLEAN, "mdm/audit.py": "import devices.hooks\n", "accounts/services.py": "from devices import hooks\n"})
    upward = upward_imports(imports_between_units(root), LAYERS)
    assert {(i.source, i.target) for i in upward} == {("mdm.platform", "devices"), ("accounts", "devices")}


def test_the_checker_catches_an_app_importing_the_project_wiring_or_the_dev_tools(tmp_path):
    root = _plant(tmp_path, {**CLEAN, "apks/services.py": "from mdm import urls\nfrom loadtest import views\n"})
    upward = upward_imports(imports_between_units(root), LAYERS)
    assert {(i.source, i.target) for i in upward} == {("apks", "mdm.project"), ("apks", "loadtest")}


def test_a_package_without_a_layer_is_reported(tmp_path):
    root = _plant(tmp_path, {**CLEAN, "reports/__init__.py": "", "reports/views.py": "from devices import hooks\n"})
    assert unplaced_units(root, LAYERS) == {"reports"}
