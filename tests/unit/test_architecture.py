"""The import rules docs/architecture.md states, checked on the source itself.

labctl's top-level packages form floors: each may import only the packages its
row in ``MAY_IMPORT`` names, and the table itself has no circle, so a reader can
draw the graph bottom to top. The engine is the floor the run stands on: it
imports nothing but the inventory's model, drivers, errors and the platform
seam, and never a domain module by name (importlib, "module:Class" strings).
No two files import each other, however indirectly. Layers plan and never
reach a device, a process or the network. The graph is read with
``scripts/import_graph.py`` (ast, nothing imported), which prints the same
figures for a person.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import import_graph as graph

PACKAGE = ROOT / "labctl"

# What each top-level package (or top-level module) of labctl may import, bottom
# floors first. A new package gets a row; an import a row does not allow fails
# below, naming the file and line. The rows are the floors of docs/architecture.md.
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "data": set(),
    "files": set(),
    "programs": {"errors"},
    "drivers": {"errors", "files", "platform"},
    "inventory": {"errors"},
    "platform": {"errors", "inventory"},
    "secrets": {"errors", "inventory"},
    "snmp_credentials": {"drivers", "inventory", "secrets"},
    "engine": {"drivers", "errors", "inventory", "platform"},
    "targets": {"drivers", "errors", "inventory", "platform"},
    "secret_box": {"engine", "errors", "inventory", "secrets"},
    "pki": {"engine", "errors", "files", "inventory", "platform", "programs", "secrets", "targets"},
    "render": {"errors", "inventory", "pki", "platform"},
    "boot": {"errors", "files", "inventory", "platform", "programs", "render"},
    "etcd": {"drivers", "engine", "errors", "files", "inventory", "pki", "platform", "render"}
    | {"targets"},
    "kube": {"drivers", "engine", "errors", "files", "inventory", "pki", "platform", "render"}
    | {"targets"},
    "ceph": {"drivers", "engine", "errors", "files", "inventory", "platform", "render", "secrets"}
    | {"targets"},
    "calico": {"drivers", "engine", "errors", "files", "inventory", "kube", "platform", "render"}
    | {"secrets", "snmp_credentials", "targets"},
    "power": {"ceph", "drivers", "engine", "errors", "etcd", "inventory", "platform", "secrets"}
    | {"snmp_credentials"},
    "install": {"boot", "drivers", "engine", "errors", "files", "inventory", "platform", "power"}
    | {"render", "targets"},
    "layers": {"calico", "ceph", "engine", "errors", "etcd", "install", "inventory", "kube"}
    | {"pki", "platform", "render"},
    "run": {"engine", "layers", "platform", "power", "secret_box", "targets"},
    "artefacts": {"ceph", "engine", "errors", "inventory", "layers", "render"},
    "sim": {"drivers", "engine", "errors", "files", "inventory", "platform", "programs", "render"}
    | {"kube", "secrets"},
    "cli": {
        "artefacts",
        "boot",
        "calico",
        "ceph",
        "drivers",
        "engine",
        "errors",
        "etcd",
        "files",
        "install",
        "inventory",
        "kube",
        "layers",
        "pki",
        "platform",
        "power",
        "programs",
        "render",
        "run",
        "secrets",
        "sim",
    },
    "__main__": {"cli"},
}

# Imports the table does not allow that a later change removes. Each must still
# exist: when it is gone, delete its line here. (Empty: the platform seam removed
# the last ones, labctl/standins.py.)
PENDING: dict[tuple[str, str], str] = {}

# Within labctl/inventory/, the engine may import only the model.
ENGINE_FLOOR = graph.ENGINE_FLOOR

IMPORTS = graph.all_imports(ROOT)


def _edges() -> dict[tuple[str, str], list[graph.Import]]:
    found: dict[tuple[str, str], list[graph.Import]] = {}
    for i in IMPORTS:
        src, dst = graph.top_package(i.source), graph.top_package(i.target)
        if src != dst and "labctl" not in (src, dst):
            found.setdefault((src, dst), []).append(i)
    return found


def test_every_package_has_a_row() -> None:
    packages = {graph.top_package(m) for m in graph.modules(ROOT)} - {"labctl"}
    missing = packages - set(MAY_IMPORT)
    assert not missing, f"add a row to MAY_IMPORT for {sorted(missing)} (and a floor in the docs)"


def test_each_package_imports_only_what_its_row_allows() -> None:
    wrong = [
        f"{i.source} line {i.line} imports {i.target}"
        for (src, dst), imports in sorted(_edges().items())
        if dst not in MAY_IMPORT.get(src, set()) and (src, dst) not in PENDING
        for i in imports
    ]
    assert not wrong, "imports across floors the table does not allow:\n" + "\n".join(wrong)


def test_the_table_has_no_circle_so_the_packages_form_floors() -> None:
    assert graph.circles(MAY_IMPORT) == []
    floors = graph.layers(MAY_IMPORT)
    assert floors[0] == ["data", "errors", "files"]


def test_no_two_packages_import_each_other() -> None:
    packages = graph.package_graph(IMPORTS)
    for src, dst in PENDING:
        packages[src].discard(dst)
    assert graph.circles(packages) == []


def test_every_pending_exception_is_still_needed() -> None:
    gone = [f"{src} → {dst}" for src, dst in PENDING if (src, dst) not in _edges()]
    assert not gone, f"no longer imported, delete from PENDING: {gone}"


def test_no_two_files_import_each_other() -> None:
    circles = graph.circles(graph.file_graph(IMPORTS))
    assert not circles, "file import circles: " + "; ".join(" ↔ ".join(c) for c in circles)


def test_the_engine_imports_only_its_floor() -> None:
    beyond = [
        f"{i.source} line {i.line} imports {i.target}"
        for i in graph.engine_reach(IMPORTS)
        if ("engine", graph.top_package(i.target)) not in PENDING
    ]
    assert not beyond, f"the engine may import only {ENGINE_FLOOR}:\n" + "\n".join(beyond)


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_imports_by_name(path: Path) -> None:
    in_engine = path.parent == PACKAGE / "engine"
    found = graph.string_imports(path, any_module_name=in_engine)
    assert not found, f"{path.relative_to(ROOT)} imports by name: {found}"


def test_the_string_import_check_sees_what_the_engine_used_to_do(tmp_path: Path) -> None:
    """The check above is not vacuous: it catches LOCAL_WORK's strings and importlib."""
    sample = tmp_path / "appliers.py"
    sample.write_text(
        '"""labctl.engine."""\n'
        "import importlib\n"
        'WORK = {"pki.mint": "labctl.pki.session:MintWork"}\n'
        'MODULE = "labctl.etcd.work"\n'
        "def work(where: str) -> object:\n"
        '    module, _, name = where.partition(":")\n'
        "    return getattr(importlib.import_module(module), name)\n"
    )
    found = {what for _, what in graph.string_imports(sample, any_module_name=True)}
    assert found == {
        "names 'labctl.pki.session:MintWork'",
        "names the module 'labctl.etcd.work'",
        "calls import_module",
    }


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_never_imports_a_layer(path: Path) -> None:
    source = graph.module_name(path, ROOT)
    assert not {
        i.target for i in IMPORTS if i.source == source and i.target.startswith("labctl.layers")
    }


FORBIDDEN_IN_LAYERS = ("labctl.drivers", "labctl.power", "labctl.sim", "subprocess", "socket")


def _all_imported_names(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "layers").glob("*.py")), ids=lambda p: p.name)
def test_layers_reach_no_device(path: Path) -> None:
    reaching = {m for m in _all_imported_names(path) if m.startswith(FORBIDDEN_IN_LAYERS)}
    assert not reaching, f"{path.name} imports {sorted(reaching)}: layers only plan"


def test_layers_holds_one_module_per_bootstrap_layer() -> None:
    from labctl.engine.layer import NotBuilt
    from labctl.layers import LAYERS

    modules = {p.stem for p in (PACKAGE / "layers").glob("*.py")} - {"__init__"}
    built = {layer.name.replace("-", "_") for layer in LAYERS if not isinstance(layer, NotBuilt)}
    assert modules == built


# -- docs/architecture.md's layout block against the tree ------------------------------


def _layout() -> dict[str, str]:
    """The layout block's entries: ``engine/`` or ``run.py`` → its text (with continuations)."""
    text = (ROOT / "docs/architecture.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        match = re.match(r"^  (\S+)(.*)$", line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2)
        elif current and line.startswith("   "):
            entries[current] += " " + line.strip()
    return entries


# Packages whose line says what their modules are rather than naming each.
DESCRIBED = {"cli/", "sim/", "layers/"}


def test_the_layout_block_names_every_package_and_top_level_module() -> None:
    entries = _layout()
    packages = {str(p.parent.relative_to(PACKAGE)) + "/" for p in PACKAGE.rglob("__init__.py")} - {
        "./"
    }
    modules = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    missing = (packages | modules) - set(entries)
    assert not missing, f"docs/architecture.md's layout block misses {sorted(missing)}"


def test_the_layout_block_names_each_package_module_that_exists_and_no_other() -> None:
    wrong: list[str] = []
    for entry, text in _layout().items():
        folder = PACKAGE / entry
        if not entry.endswith("/") or not folder.is_dir():
            continue
        named = set(re.findall(r"\b(\w+\.py)\b", text))
        present = {p.name for p in folder.glob("*.py")} - {"__init__.py"}
        wrong += [f"{entry}{n} does not exist" for n in sorted(named - present)]
        if entry not in DESCRIBED:
            wrong += [f"{entry}{n} is not named" for n in sorted(present - named)]
    assert not wrong, "docs/architecture.md's layout block: " + "; ".join(wrong)
