#!/usr/bin/env python3
"""Reads labctl's import graph from its source, so the architecture's claims can be measured.

docs/architecture.md says which package may import which; this script reads
what the code actually does, with Python's ``ast`` and nothing imported, and
prints what a reviewer needs to judge it: import circles between files, the
graph of labctl's top-level packages with its strongly connected components
(a package knot shows up as one component of several packages), and every
import in ``labctl/engine/`` that reaches beyond the engine's floor.

Every import counts: at the top of a module, inside a function, or under
``if TYPE_CHECKING``, because each is a dependency a reader has to follow.
``from labctl.a import b`` names the module ``labctl.a.b`` when that is a file,
and ``labctl.a`` otherwise. Importing a module also runs its package's
``__init__``; that implied edge is not counted (a package's ``__init__`` that
re-exports its own modules would otherwise put every package in a circle).

``tests/unit/test_architecture.py`` enforces the same graph with this module's
functions. Run: ``python scripts/import_graph.py [--json]``.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "labctl"

# What the engine may import besides itself and the standard library: the
# inventory's model, drivers, errors, and the platform seam.
ENGINE_FLOOR = ("labctl.inventory.model", "labctl.drivers", "labctl.errors", "labctl.platform")


@dataclass(frozen=True)
class Import:
    """One import statement's target, as a labctl module name, with where it was written."""

    source: str  # the importing module, e.g. labctl.engine.runner
    target: str  # the imported module, e.g. labctl.power.controller
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of labctl by its dotted name."""
    return {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}


def _resolve(name: str, known: Mapping[str, Path]) -> str | None:
    """The longest labctl module that ``name`` names (an attribute's module for ``a.b.attr``)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(source: str, path: Path, known: Mapping[str, Path]) -> list[Import]:
    """The labctl modules ``path`` imports, anywhere in it."""
    found: list[Import] = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, known)
                if target:
                    found.append(Import(source, target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, source, path.name == "__init__.py")
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}", known)
                if target:
                    found.append(Import(source, target, node.lineno))
    return [i for i in found if i.target != source]


def all_imports(root: Path = ROOT) -> list[Import]:
    known = modules(root)
    return [i for name, path in known.items() for i in imports_of(name, path, known)]


def top_package(module: str) -> str:
    """``labctl.engine.runner`` → ``engine``; ``labctl.errors`` → ``errors``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph``, each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
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
            found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found, key=lambda c: (-len(c), c))


def file_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for i in imports:
        graph.setdefault(i.source, set()).add(i.target)
        graph.setdefault(i.target, set())
    return graph


def package_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for i in imports:
        src, dst = top_package(i.source), top_package(i.target)
        graph.setdefault(src, set())
        graph.setdefault(dst, set())
        if src != dst and src != PACKAGE and dst != PACKAGE:
            graph[src].add(dst)
    graph.pop(PACKAGE, None)
    return graph


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The components of ``graph`` that hold a circle: more than one member."""
    return [c for c in strongly_connected(graph) if len(c) > 1]


def engine_reach(imports: Iterable[Import]) -> list[Import]:
    """Imports in labctl/engine/ of labctl modules outside the engine and its floor."""
    return [
        i
        for i in imports
        if top_package(i.source) == "engine"
        and top_package(i.target) != "engine"
        and not any(i.target == f or i.target.startswith(f + ".") for f in ENGINE_FLOOR)
    ]


IMPORT_BY_NAME = ("import_module", "__import__", "spec_from_file_location", "find_spec")
MODULE_ATTRIBUTE = re.compile(r"labctl(\.[A-Za-z_]\w*)+:[A-Za-z_]\w*")
MODULE_PATH = re.compile(r"labctl(\.[A-Za-z_]\w*)+")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (they name modules to explain them)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def string_imports(path: Path, *, any_module_name: bool = False) -> list[tuple[int, str]]:
    """Where ``path`` imports a module by name at run time instead of with ``import``.

    Flags importlib's ``import_module`` (and ``__import__``, ``find_spec``, loading
    from a file) and "labctl.x:Class" strings; with ``any_module_name``, also any
    string that is a labctl module's dotted name outside a docstring (the engine
    has no reason to hold one).
    """
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("importlib"):
            for alias in node.names:
                if alias.name in IMPORT_BY_NAME:
                    found.append((node.lineno, f"imports importlib's {alias.name}"))
        elif isinstance(node, ast.Attribute) and node.attr in IMPORT_BY_NAME:
            found.append((node.lineno, f"calls {node.attr}"))
        elif isinstance(node, ast.Name) and node.id in IMPORT_BY_NAME:
            found.append((node.lineno, f"calls {node.id}"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            if MODULE_ATTRIBUTE.fullmatch(node.value):
                found.append((node.lineno, f"names {node.value!r}"))
            elif any_module_name and MODULE_PATH.fullmatch(node.value):
                found.append((node.lineno, f"names the module {node.value!r}"))
    return found


def layers(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The packages in floors, each importing only lower ones (for a graph without circles)."""
    floor: dict[str, int] = {}

    def height(node: str, seen: frozenset[str]) -> int:
        if node in floor:
            return floor[node]
        if node in seen:
            raise ValueError(f"{node} is in a circle")
        below = [height(d, seen | {node}) for d in graph.get(node, ())]
        floor[node] = 1 + max(below, default=-1)
        return floor[node]

    for node in graph:
        height(node, frozenset())
    out: list[list[str]] = [[] for _ in range(1 + max(floor.values(), default=-1))]
    for node, h in floor.items():
        out[h].append(node)
    return [sorted(f) for f in out]


def report(root: Path = ROOT) -> dict[str, object]:
    imports = all_imports(root)
    files = file_graph(imports)
    packages = package_graph(imports)
    knots = circles(packages)
    engine_files = sorted((root / PACKAGE / "engine").glob("*.py"))
    return {
        "files": len(modules(root)),
        "file_circles": circles(files),
        "packages": {p: sorted(d) for p, d in sorted(packages.items())},
        "package_edges": sum(len(d) for d in packages.values()),
        "package_components": knots,
        "floors": None if knots else layers(packages),
        "engine_reach": [
            f"{i.source} line {i.line} imports {i.target}" for i in engine_reach(imports)
        ],
        "engine_string_imports": [
            f"{module_name(p, root)} line {line}: {what}"
            for p in engine_files
            for line, what in string_imports(p, any_module_name=True)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = report()
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    file_circles: list[list[str]] = figures["file_circles"]  # type: ignore[assignment]
    components: list[list[str]] = figures["package_components"]  # type: ignore[assignment]
    packages: dict[str, list[str]] = figures["packages"]  # type: ignore[assignment]
    print(f"{figures['files']} modules under labctl/")
    print(f"file-level import circles: {len(file_circles)}")
    for c in file_circles:
        print("  " + " ↔ ".join(c))
    print(f"top-level packages: {len(packages)}, edges between them: {figures['package_edges']}")
    for p, deps in packages.items():
        print(f"  {p} → {', '.join(deps) or '(nothing)'}")
    print(f"package components with a circle: {len(components)}")
    for c in components:
        print(f"  {len(c)} packages: {', '.join(c)}")
    if figures["floors"]:
        print("floors (each imports only lower ones), bottom first:")
        floors: list[list[str]] = figures["floors"]  # type: ignore[assignment]
        for n, f in enumerate(floors):
            print(f"  {n}: {', '.join(f)}")
    reach: list[str] = figures["engine_reach"]  # type: ignore[assignment]
    strings: list[str] = figures["engine_string_imports"]  # type: ignore[assignment]
    print(f"engine imports beyond its floor ({', '.join(ENGINE_FLOOR)}): {len(reach)}")
    for line in reach:
        print("  " + line)
    print(f"engine imports by name (importlib, strings): {len(strings)}")
    for line in strings:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
