"""The import rules docs/architecture.md states, checked on the source itself.

labctl's top-level packages form floors: each may import only the packages its
row in ``MAY_IMPORT`` names, and the table itself has no circle, so a reader can
draw the graph bottom to top. The engine is the floor the run stands on: it
imports nothing but the inventory's model, drivers, errors and the platform
seam, and never a domain module by name (importlib, "module:Class" strings).
The seam's protocol (``Platform``, in ``engine/layer.py``) names actions, so it
lives in the engine; ``labctl/platform.py`` (the real lab's answers) stays below
the engine by naming none; the simulated lab's answers and every render only it
needs live in ``labctl/sim/``, which only the CLI imports.
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
    "gobuild": {"errors", "files"},
    "drivers": {"data", "errors", "files", "platform"},
    "inventory": {"errors"},
    "platform": {"errors", "inventory"},
    "secrets": {"engine", "errors", "inventory"},
    "snmp_credentials": {"drivers", "inventory", "secrets"},
    "engine": {"drivers", "errors", "inventory", "platform"},
    "targets": {"drivers", "errors", "inventory", "platform"},
    "pki": {"engine", "errors", "files", "inventory", "platform", "programs", "secrets", "targets"},
    "render": {"data", "errors", "inventory", "pki", "platform"},
    "boot": {"errors", "files", "inventory", "platform", "programs", "render"},
    "etcd": {"drivers", "engine", "errors", "files", "inventory", "pki", "platform", "render"}
    | {"data", "gobuild", "targets"},
    "kubernetes": {"drivers", "engine", "errors", "files", "inventory", "pki", "platform", "render"}
    | {"data", "gobuild", "targets"},
    "ceph": {"drivers", "engine", "errors", "files", "inventory", "platform", "render", "secrets"}
    | {"targets"},
    "calico": {
        "drivers",
        "engine",
        "errors",
        "files",
        "inventory",
        "kubernetes",
        "platform",
        "render",
    }
    | {"secrets", "snmp_credentials", "targets"},
    "power": {"ceph", "drivers", "engine", "errors", "etcd", "inventory", "platform", "secrets"}
    | {"calico", "kubernetes", "snmp_credentials", "targets"},
    "os": {"boot", "drivers", "engine", "errors", "files", "inventory", "platform", "power"}
    | {"render", "targets"},
    "layers": {"calico", "ceph", "engine", "errors", "etcd", "inventory", "kubernetes", "os"}
    | {"data", "monitoring", "pki", "platform", "render"},
    "monitoring": {"drivers", "engine", "errors", "inventory", "kubernetes", "render"},
    # Day two: what runs read live, a reset planned (pure) and carried out.
    "day2": {"calico", "ceph", "data", "engine", "errors", "etcd", "files", "inventory"}
    | {"kubernetes", "os", "power", "render", "targets"},
    "run": {"engine", "layers", "platform", "power", "secrets", "targets"},
    # doctor asks what the status commands ask (monitoring's too), through their sessions
    # and the drivers.
    "doctor": {"calico", "ceph", "drivers", "engine", "errors", "etcd", "inventory"}
    | {"kubernetes", "monitoring", "pki", "platform", "power", "targets"},
    "artefacts": {"ceph", "engine", "errors", "inventory", "layers", "render"},
    # The whole-lab diff: what runs, read through the domains' sessions, against the plans.
    "labdiff": {"ceph", "engine", "errors", "etcd", "inventory", "kubernetes", "render"},
    # The simulated platform hands layers plan pieces (engine actions; BIRD's passwords
    # filled as calico/fill.py fills FRR's) and renders only it needs (sim/render/).
    "sim": {"drivers", "engine", "errors", "files", "inventory", "platform", "programs", "render"}
    | {"calico", "data", "etcd", "kubernetes", "secrets"},
    "cli": {
        "artefacts",
        "boot",
        "calico",
        "ceph",
        "day2",
        "doctor",
        "drivers",
        "engine",
        "errors",
        "etcd",
        "files",
        "inventory",
        "kubernetes",
        "labdiff",
        "layers",
        "monitoring",
        "os",
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
        'WORK = {"pki.mint": "labctl.pki.lab_pki:MintWork"}\n'
        'MODULE = "labctl.etcd.work"\n'
        "def work(where: str) -> object:\n"
        '    module, _, name = where.partition(":")\n'
        "    return getattr(importlib.import_module(module), name)\n"
    )
    found = {what for _, what in graph.string_imports(sample, any_module_name=True)}
    assert found == {
        "names 'labctl.pki.lab_pki:MintWork'",
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


def test_no_module_is_named_session() -> None:
    """A module says what it holds (issue 22): ``etcd/cluster.py``, not ``etcd/session.py``."""
    found = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("session.py"))
    assert not found, f"name these after what they hold: {found}"


def test_every_plan_producer_in_layers_is_a_layer_in_LAYERS() -> None:
    """``labctl/layers/`` holds layers only: a class there with ``plans(ctx)`` is in ``LAYERS``.

    A one-off run (a restore) lives with its domain, e.g. ``etcd/restore.py``; a
    layer's own helper that builds plans from what the layer gives it (``plans()``,
    no context) is part of that layer.
    """
    from labctl.layers import LAYERS

    in_layers = {type(layer).__name__ for layer in LAYERS}
    producers = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
        for path in sorted((PACKAGE / "layers").glob("*.py"))
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(f, ast.FunctionDef) and f.name == "plans" and len(f.args.args) == 2
            for f in node.body
        )
        and node.name not in in_layers
    ]
    assert not producers, f"plan producers in labctl/layers/ that are not in LAYERS: {producers}"


# -- simulation-only renders live with the simulation (issue 22 item 1) -----------------

# What only the simulated lab renders, by module name: BIRD standing in for calico-node,
# definitions of Calico's kinds with no manifest, what nodes sharing one kernel need.
SIM_ONLY_RENDERS = ("bird", "calico_node", "calico_standin", "kubernetes")
# Text that only the simulated lab's nodes get (a shared kernel's kubelet, containerd
# and kube-proxy; BIRD's unit and control socket; the stand-in definitions' note).
SIM_ONLY_MARKS = (
    '"cgroupfs"',
    '"failSwapOn"',
    '"maxPerCore"',
    "unshare --mount",
    "labctl-containerd",
    "kubelet-host-wrapper",
    "calico-bird.service",
    "ctr -n k8s.io images import",
)
MAY_IMPORT_SIM_RENDERS = ("labctl.sim", "labctl.cli")


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _sim_only(target: str) -> bool:
    names = {f"labctl.render.{n}" for n in SIM_ONLY_RENDERS if n != "kubernetes"}
    names |= {f"labctl.sim.render.{n}" for n in SIM_ONLY_RENDERS} | {"labctl.sim.render"}
    return target in names or target.startswith("labctl.sim.render.")


def test_the_simulation_only_renders_live_under_sim() -> None:
    missing = [n for n in SIM_ONLY_RENDERS if not (PACKAGE / "sim/render" / f"{n}.py").is_file()]
    left = [n for n in SIM_ONLY_RENDERS[:3] if (PACKAGE / "render" / f"{n}.py").exists()]
    assert not missing and not left, f"not under labctl/sim/render: {missing + left}"


def test_only_sim_and_cli_import_a_simulation_only_render() -> None:
    wrong = [
        f"{i.source} line {i.line} imports {i.target}"
        for i in IMPORTS
        if _sim_only(i.target) and not _under(i.source, MAY_IMPORT_SIM_RENDERS)
    ]
    assert not wrong, "simulation-only renders imported outside labctl/sim, labctl/cli:\n" + (
        "\n".join(wrong)
    )


def test_what_only_a_simulated_node_gets_is_written_under_sim() -> None:
    """The shared kernel's settings, BIRD's unit and the image import are the simulated
    platform's to hand over; no other module of labctl spells them."""
    wrong = [
        f"{path.relative_to(ROOT)} holds {mark}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not path.is_relative_to(PACKAGE / "sim")
        for mark in SIM_ONLY_MARKS
        if mark in path.read_text()
    ]
    assert not wrong, "\n".join(wrong)


def test_the_sim_only_import_check_is_not_vacuous() -> None:
    assert _sim_only("labctl.render.bird") and _sim_only("labctl.sim.render.kubernetes")
    assert not _sim_only("labctl.render.kubernetes") and not _sim_only("labctl.render.calico")
    assert _under("labctl.sim.platform", MAY_IMPORT_SIM_RENDERS)
    assert not _under("labctl.simulator", MAY_IMPORT_SIM_RENDERS)


def _floors_of_the_table() -> dict[int, set[str]]:
    """The floors ``MAY_IMPORT`` makes: a package sits one above the highest it may import."""
    floor: dict[str, int] = {}

    def place(package: str) -> int:
        if package not in floor:
            allowed = MAY_IMPORT.get(package, set())
            floor[package] = 1 + max(map(place, allowed)) if allowed else 0
        return floor[package]

    by_floor: dict[int, set[str]] = {}
    for package in MAY_IMPORT:
        by_floor.setdefault(place(package), set()).add(package)
    return by_floor


def test_the_floors_docs_architecture_states_are_the_tables() -> None:
    """docs/architecture.md's floor table names the floors and packages this test's table
    makes, so the page states the rules as they are enforced."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    stated: dict[int, set[str]] = {}
    for match in re.finditer(r"^  \| (\d+) \| ([^|]+) \|", text, re.M):
        stated[int(match.group(1))] = set(re.findall(r"`([a-z_0-9]+)`", match.group(2)))
    assert stated == _floors_of_the_table()
