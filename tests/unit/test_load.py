"""The position-keeping YAML loader."""

from __future__ import annotations

import pytest
import yaml

from labctl.inventory.load import LoadFailed, load_yaml
from labctl.inventory.problems import Position, format_path
from tests.conftest import REFERENCE


def _fail(text: str) -> list[tuple[str, int | None]]:
    with pytest.raises(LoadFailed) as caught:
        load_yaml(text, "x.yaml")
    return [(p.check_id, p.position.line if p.position else None) for p in caught.value.problems]


def test_same_data_as_safe_load_on_the_reference() -> None:
    text = REFERENCE.read_text()
    data, _ = load_yaml(text, "inventory.yaml")
    assert data == yaml.safe_load(text)


def test_positions_of_values_and_keys() -> None:
    data, source = load_yaml("a:\n  b: [1, {c: x}]\n  d: 2\n", "x.yaml")
    assert data == {"a": {"b": [1, {"c": "x"}], "d": 2}}
    assert source.value_at(("a", "b", 1, "c")) == Position(2, 14)
    assert source.key_at(("a", "d")) == Position(3, 3)
    # unknown paths fall back to the nearest known ancestor
    assert source.value_at(("a", "b", 1, "zzz")) == Position(2, 10)


def test_duplicate_key_is_an_error_naming_both_lines() -> None:
    with pytest.raises(LoadFailed) as caught:
        load_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", "x.yaml")
    (problem,) = caught.value.problems
    assert problem.check_id == "LAB002"
    assert problem.position == Position(4, 3)
    assert "line 3" in problem.message
    assert problem.path == ("b", "c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1,\n", [("LAB001", 2)]),
        ("", [("LAB001", 1)]),
        ("# only a comment\n", [("LAB001", 1)]),
        ("a: 1\n---\nb: 2\n", [("LAB001", 2)]),
        ("a: *nowhere\n", [("LAB001", 1)]),
        ("a: &x [*x]\n", [("LAB001", 1)]),
        ("? [k]\n: v\n", [("LAB001", 1)]),
        ("a: !!python/object:os.system x\n", [("LAB001", 1)]),
    ],
)
def test_broken_yaml(text: str, expected: list[tuple[str, int]]) -> None:
    assert _fail(text) == expected


def test_keys_keep_their_text_and_merge_keys_work() -> None:
    data, _ = load_yaml(
        "base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\non: 1\nyes: 2\nd: 2024-01-01\n", "x"
    )
    assert data["c"] == {"x": 1, "y": 3}
    assert data["on"] == 1 and data["yes"] == 2  # not True: keys are text
    assert data["d"] == "2024-01-01"  # dates stay text


def test_format_path() -> None:
    assert format_path(("servers", 1, "bmc", "address")) == "servers[1].bmc.address"
    assert format_path(()) == ""
