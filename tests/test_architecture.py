"""The shape issue 10 asked for, kept: no import cycles between the package's modules (type-only
imports included: a cycle there is still a knot to read), and no module over ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import amorsize_exec

PACKAGE_DIR = Path(amorsize_exec.__file__).parent
MAX_LINES = 420  # "about 400": a docstring's growth must not fail the suite


def _modules() -> dict[str, Path]:
    """Dotted name (relative to the package, ``""`` for it) -> file."""
    found = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The dotted name a relative import reaches from ``module``."""
    base = module.split(".") if module else []
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            reached = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:  # `from . import _cost_model` names a module
                sub = f"{reached}.{alias.name}" if reached else alias.name
                if sub in modules:
                    graph[name].add(sub)
                elif reached in modules and reached != name:
                    graph[name].add(reached)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports_it_must() -> None:
    graph = _import_graph()
    assert "_cost_model" in graph["_executor"] or "_map_call" in graph["_executor"]
    assert "_decision" in graph["_cost_model"]


def test_no_module_imports_itself_back() -> None:
    assert _cycles(_import_graph()) == []


def test_a_planted_cycle_is_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_over_about_400_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
