"""The package's layout: no import cycles among ``orroute``'s modules (a cycle means code lives in
the wrong file), and the research/evaluation code stays out of what ``import orroute`` loads.

The graph is built from the source (AST), with every import: module level and inside functions
(a lazy import that closes a loop is still a loop), but not ``if TYPE_CHECKING:`` blocks (no
run-time edge). A package's ``__init__`` re-exporting its submodules is not a cycle edge back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import orroute

PACKAGE = Path(orroute.__file__).resolve().parent
ROOT = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports (resolving relative imports; ``from x import y``
    counts ``x.y`` when that is a module, else ``x``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in modules:
                    out.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if sub in modules:
                    out.add(sub)
                elif mod in modules:
                    out.add(mod)
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {m: _imports(p, modules) for m, p in files.items()}
    # a package importing its own submodules (re-exports) is not an edge back
    return {m: {d for d in deps if not (m == d.rpartition(".")[0] and
                                         files[m].name == "__init__.py")}
            for m, deps in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = import_graph()
    graph["orroute.types"] = graph["orroute.types"] | {"orroute.catalog"}
    graph["orroute.catalog"] = graph["orroute.catalog"] | {"orroute.types"}
    assert ["orroute.catalog", "orroute.types"] in cycles(graph)


def test_no_library_module_imports_the_research_code() -> None:
    graph = import_graph()
    library = [m for m in graph if not m.startswith(("orroute.research", "orroute._cli"))]
    assert [m for m in library if any(d.startswith("orroute.research") for d in graph[m])] == []


def test_research_and_demo_code_is_not_loaded_by_import_orroute() -> None:
    code = ("import sys, orroute, orroute.routing, orroute.manager, orroute.cost; "
            "print(sorted(m for m in sys.modules if m.startswith(('orroute.research', "
            "'orroute._cli._demo', 'orroute._outcomes'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.strip() == "[]"
