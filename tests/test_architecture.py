"""The layers point one way (docs/architecture.md), checked by reading every
import of the project with ``ast``: nothing is imported or run.

``common`` is below everything; ``pilot`` never needs the server; the
server's services (scheduling, provisioning, store, auth, scratch, federation, credentials) never
reach up into the HTTP handlers (``server/api``, ``server/web``); the
handlers never reach into the app factory; route tables live only in
``server/api`` and ``server/web``; and the app's modules import what they use
at the top, where an import cycle fails at once instead of hiding in a
function that runs later.
"""
from __future__ import annotations

import ast
import pathlib
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("common", "pilot", "server")


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, dotted (``server.api.pilots``)."""
    target: str
    """What it imports, dotted and absolute (``server.store``, ``server.store.Task``)."""
    line: int
    top_level: bool
    """False for an import inside a function or method."""


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: pathlib.Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, top_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(name, alias.name, child.lineno, top_level) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    anchor = package.split(".")[:len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.extend(Import(name, f"{base}.{alias.name}" if alias.name != "*" else base, child.lineno,
                                    top_level) for alias in child.names)
                found.append(Import(name, base, child.lineno, top_level))
            visit(child, inner)

    visit(tree, True)
    return found


def project_files() -> list[pathlib.Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


ALL_IMPORTS = [imp for path in project_files() for imp in imports_of(path)]


def under(name: str, *prefixes: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


FORBIDDEN: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (("common",), ("server", "pilot"), "common is shared by the pilot and the server and imports neither"),
    (("pilot",), ("server",), "the pilot runs on worker nodes without the server's code"),
    (("server.scheduling", "server.provisioning", "server.store", "server.auth", "server.scratch",
      "server.federation", "server.credentials"),
     ("server.api", "server.web", "server.app"), "services never reach up into the HTTP handlers"),
    (("server.store",), ("server.scheduling", "server.provisioning"), "the store is below the services"),
    (("server.api",), ("server.app", "server.web"), "handlers do not import the app factory or the website"),
    (("server.web",), ("server.app", "server.api"), "the website does not import the app factory or the API"),
    (("server.metrics", "server.keys", "server.errors", "server.settings"), ("server.api", "server.web"),
     "shared server modules are below the handlers"),
]


@pytest.mark.parametrize("sources,targets,why", FORBIDDEN, ids=[rule[2] for rule in FORBIDDEN])
def test_no_import_points_the_wrong_way(sources: tuple[str, ...], targets: tuple[str, ...], why: str) -> None:
    wrong = sorted({f"{imp.module}:{imp.line} imports {imp.target}" for imp in ALL_IMPORTS
                    if under(imp.module, *sources) and under(imp.target, *targets)})
    assert not wrong, f"{why}:\n" + "\n".join(wrong)


def test_route_tables_live_with_the_handlers() -> None:
    """Only server/api and server/web declare routes (``/metrics`` included)."""
    declaring = sorted({imp.module for imp in ALL_IMPORTS
                        if imp.target in ("server.api.routing.ApiRoutes", "server.web.framework.PageRoutes",
                                          "aiohttp.web.RouteTableDef")
                        and not under(imp.module, "server.api", "server.web", "server.app")})
    assert not declaring, f"route tables outside server/api and server/web: {declaring}"
    assert not (ROOT / "server" / "provisioning" / "api.py").exists()


LAZY_ALLOWED = {
    "server.cli": "each command imports what it needs when it runs, so `frazil --help` starts fast",
    "server.store": "store/__init__ loads a backend's driver (pymongo) only when that backend is opened",
    "server.provisioning.bundle": "a build tool: reads the version only while building",
    "server.provisioning.bundle_main": "the bundle's entry point imports the pilot after it set sys.path",
}


def test_server_modules_import_at_the_top() -> None:
    """A project import inside a function hides a cycle until that function runs."""
    lazy = sorted({f"{imp.module}:{imp.line} imports {imp.target}" for imp in ALL_IMPORTS
                   if not imp.top_level and under(imp.module, "server") and under(imp.target, *PACKAGES)
                   and not any(imp.module == m or (m == "server.cli" and under(imp.module, m)) for m in LAZY_ALLOWED)})
    assert not lazy, "lazy imports:\n" + "\n".join(lazy)


def test_the_checker_sees_imports() -> None:
    """The rules above would pass vacuously if the parser found nothing."""
    app = {imp.target for imp in ALL_IMPORTS if imp.module == "server.app"}
    assert "server.api.pilots" in app and "server.scheduling.service" in app
    relative = {imp.target for imp in ALL_IMPORTS if imp.module == "server.store.sqlite.schema"}
    assert "server.store.interface.SchemaVersionError" in relative
    lazy = [imp for imp in ALL_IMPORTS if imp.module == "server.cli.server_cmd" and not imp.top_level]
    assert any(imp.target == "server.app.create_app" for imp in lazy)
