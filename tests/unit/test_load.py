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


def test_a_whole_number_written_with_a_point_is_an_int() -> None:
    """JSON Schema's "integer" takes 1024.0, so the loader makes it the int it is."""
    data, _ = load_yaml("a: 1024.0\nb: 0.5\nc: 3\nd: .inf\ne: -2.0e+1\n", "x.yaml")
    assert data == {"a": 1024, "b": 0.5, "c": 3, "d": float("inf"), "e": -20}
    assert [type(data[k]) for k in "abcde"] == [int, float, int, float, int]


def test_pool_numbers_written_with_a_point_are_checked_and_rendered_as_integers() -> None:
    """`size: 3.0, pg_num: 1000.0` passes the schema: the checks name the count that is
    no power of two (not a traceback), and the pools step gets "3" and "1000"."""
    from labctl.inventory import check_text

    text = REFERENCE.read_text()
    pools = "{name: rbd, application: rbd, size: 3, pg_num: 1024}"
    assert pools in text
    text = text.replace(pools, "{name: rbd, application: rbd, size: 3.0, pg_num: 1000.0}")
    result = check_text(text, "inventory.yaml")
    assert result.inventory is not None
    rbd = result.inventory.cluster.ceph.pools[0] if result.inventory.cluster.ceph else None
    assert rbd is not None and (rbd.size, rbd.pg_num) == (3, 1000)
    assert type(rbd.size) is int and type(rbd.pg_num) is int
    assert [p.check_id for p in result.problems] == ["LAB082"]
