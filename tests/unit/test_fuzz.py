"""Property: whatever an inventory turns into, labctl answers 0, 1 or 2 and never crashes.

Mutations start from the reference inventory: structural ones on its data
(drop a key or item, swap in a value of another type, random scalars) and
textual ones on its YAML (duplicate, drop or garble a line, which also makes
duplicate keys and syntax errors).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from labctl.cli.main import app
from labctl.inventory import check_text
from labctl.inventory.checks import REGISTRY
from tests.conftest import REFERENCE

TEXT = REFERENCE.read_text()
DATA = yaml.safe_load(TEXT)
runner = CliRunner()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["", "fohn", "mgmt", "10.31.0.11", "31.31.164.208/28", "aa:bb", "/dev/sda"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


PATHS = _paths(DATA)[1:]


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "drop":
        del parent[last]
    else:
        parent[last] = value
    return data


def _assert_answers(text: str, tmp_path: Path) -> None:
    result = check_text(text, "fuzz.yaml")
    assert all(p.check_id in REGISTRY for p in result.problems)
    target = tmp_path / "fuzz.yaml"
    target.write_text(text)
    out = runner.invoke(app, ["validate", "-f", "json", str(target)])
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    assert out.exit_code in (0, 1, 2)
    assert out.exit_code == (1 if result.errors else 0)


fuzz_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fuzz_settings
@given(path=st.sampled_from(PATHS), action=st.sampled_from(["drop", "replace"]), value=values)
def test_structural_mutations(
    path: tuple[Any, ...], action: str, value: Any, tmp_path: Path
) -> None:
    mutated = _mutate(DATA, path, action, value)
    _assert_answers(yaml.safe_dump(mutated, sort_keys=False), tmp_path)


@fuzz_settings
@given(
    line=st.integers(min_value=0, max_value=TEXT.count("\n") - 1),
    action=st.sampled_from(["duplicate", "drop", "garble"]),
    junk=st.text(max_size=6),
)
def test_text_mutations(line: int, action: str, junk: str, tmp_path: Path) -> None:
    lines = TEXT.splitlines(keepends=True)
    if action == "duplicate":
        lines.insert(line, lines[line])
    elif action == "drop":
        del lines[line]
    else:
        cut = len(lines[line]) // 2
        lines[line] = lines[line][:cut] + junk + lines[line][cut:]
    _assert_answers("".join(lines), tmp_path)
