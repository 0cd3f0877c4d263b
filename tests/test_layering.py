"""The layout docs/architecture.md draws, held against the code: which package may import
which (nothing runs back up the layers), no import circle between the modules of a
package, and no module past the size where it stops having one job. Read from the source
with `ast`, so a lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "footfall_contract": ROOT / "contract" / "footfall_contract",
    "footfall_runtime": ROOT / "runtime" / "footfall_runtime",
    "footfall_edge": ROOT / "edge" / "footfall_edge",
    "footfall_collector": ROOT / "collector" / "footfall_collector",
    "footfall_alerts": ROOT / "collector" / "footfall_alerts",
    "footfall_report": ROOT / "collector" / "footfall_report",
    "footfall_web": ROOT / "dashboards" / "footfall_web",
    "footfall_sim": ROOT / "sim" / "footfall_sim",
}
# Who may import whom (docs/architecture.md, "Layers"). The edge runs on a Pi: the wire
# contract and the shared adapters only; the server side never imports the edge, except
# the simulator, which runs the real edge code.
ALLOWED = {
    "footfall_contract": set(),
    "footfall_runtime": {"footfall_contract"},
    "footfall_edge": {"footfall_contract", "footfall_runtime"},
    "footfall_collector": {"footfall_contract", "footfall_runtime"},
    "footfall_alerts": {"footfall_contract", "footfall_runtime", "footfall_collector"},
    "footfall_report": {"footfall_contract", "footfall_runtime", "footfall_collector"},
    "footfall_web": {
        "footfall_contract",
        "footfall_runtime",
        "footfall_collector",
        "footfall_report",
    },
    "footfall_sim": {
        "footfall_contract",
        "footfall_runtime",
        "footfall_edge",
        "footfall_collector",
    },
}
MAX_LINES = 420  # "about 400": a module past it is doing more than one job
CATALOGUES: set[str] = set()  # generated or catalogue modules exempt from MAX_LINES


def modules(package: str) -> Iterator[tuple[str, Path]]:
    root = PACKAGES[package]
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        yield ".".join([package, *parts]), path


def imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports, absolute, at any depth of the file."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {  # `if TYPE_CHECKING:` imports exist for the type checker only
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_packages_import_only_the_layers_below(package: str) -> None:
    ours = set(PACKAGES)
    wrong = []
    for name, path in modules(package):
        for mod in imports(name, path):
            top = mod.split(".")[0]
            if top in ours and top != package and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_circles_within_a_package(package: str) -> None:
    """An import circle means two modules are one idea, or one of them knows too much
    (the collector's HTTP server and its service used to import each other)."""
    names = dict(modules(package))
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        for mod in imports(name, path):
            while mod and mod not in names:
                mod = mod.rpartition(".")[0]
            # A module importing its own package's __init__ re-exports is not a circle.
            if mod and mod != name and mod != package and not name.startswith(mod + "."):
                deps.add(mod)
        graph[name] = deps
    circles = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                circles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == [], "\n".join(circles)


def test_no_module_does_more_than_one_job() -> None:
    long = []
    for package in PACKAGES:
        for name, path in modules(package):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES and name not in CATALOGUES:
                long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert long == [], "\n".join(long)


def test_the_edge_agent_needs_no_server_library() -> None:
    """A Pi installs `.[edge]` only: its running code imports none of the collector's
    libraries (pydantic only in the short-lived settings check, by design)."""
    server_only = {"influxdb_client", "fastapi", "uvicorn", "yaml", "prometheus_client"}
    wrong = []
    for name, path in modules("footfall_edge"):
        for mod in imports(name, path):
            if mod.split(".")[0] in server_only:
                wrong.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert wrong == [], "\n".join(wrong)
