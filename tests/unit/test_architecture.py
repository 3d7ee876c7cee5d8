"""The import rules docs/architecture.md states, checked on the source itself.

The engine runs layers but never imports them; layers plan and never reach a
device, a process or the network, so they import no driver and no module
that does I/O for them (power sessions, the simulated lab, subprocess).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "labctl"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_never_imports_a_layer(path: Path) -> None:
    assert not {m for m in _imports(path) if m.startswith("labctl.layers")}


FORBIDDEN_IN_LAYERS = ("labctl.drivers", "labctl.power", "labctl.sim", "subprocess", "socket")


@pytest.mark.parametrize("path", sorted((PACKAGE / "layers").glob("*.py")), ids=lambda p: p.name)
def test_layers_reach_no_device(path: Path) -> None:
    reaching = {m for m in _imports(path) if m.startswith(FORBIDDEN_IN_LAYERS)}
    assert not reaching, f"{path.name} imports {sorted(reaching)}: layers only plan"


def test_layers_holds_one_module_per_bootstrap_layer() -> None:
    from labctl.engine.layer import NotBuilt
    from labctl.layers import LAYERS

    modules = {p.stem for p in (PACKAGE / "layers").glob("*.py")} - {"__init__"}
    built = {layer.name.replace("-", "_") for layer in LAYERS if not isinstance(layer, NotBuilt)}
    assert modules == built
