"""A value outside an enum is refused with the allowed values and, when we can tell, the fix.

The hint comes from a case or spelling slip (difflib), or from the names people
type for a value the schema spells otherwise (ENUM_ALIASES): fcos for fedora-coreos.
"""

from __future__ import annotations

import pytest

from labctl.inventory import check_text
from labctl.inventory.schema import ENUM_ALIASES, schema
from tests.conftest import REFERENCE

CASES = [
    # (what the reference says, what the user wrote, the hint expected; None: no hint)
    (
        "distribution: flatcar, channel: beta}",
        "distribution: fcos, channel: beta}",
        "fedora-coreos",
    ),
    (
        "distribution: flatcar, channel: beta}",
        "distribution: CoreOS, channel: beta}",
        "fedora-coreos",
    ),
    (
        "distribution: flatcar, channel: beta}",
        "distribution: flatcar-linux, channel: beta}",
        "flatcar",
    ),
    ("distribution: flatcar, channel: beta}", "distribution: Flatcar, channel: beta}", "flatcar"),
    ("channel: alpha}", "channel: stabel}", "stable"),
    ("roles: [etcd, control-plane,", "roles: [etcd, control_plane,", "control-plane"),
    ("roles: [etcd, control-plane,", "roles: [etcd, master,", "control-plane"),
    ("purpose: management", "purpose: mgmt", "management"),
    ("auth_protocol: sha\n", "auth_protocol: sha1\n", "sha"),
    ("channel: alpha}", "channel: nightly}", None),
]


@pytest.mark.parametrize(("old", "new", "hint"), CASES, ids=[c[1] for c in CASES])
def test_enum_mistake_names_the_allowed_values_and_the_fix(
    old: str, new: str, hint: str | None
) -> None:
    text = REFERENCE.read_text()
    assert old in text
    result = check_text(text.replace(old, new, 1), "inventory.yaml")
    (problem,) = result.problems
    assert problem.check_id == "LAB005"
    assert "expected one of: " in problem.message
    if hint is None:
        assert "did you mean" not in problem.message
    else:
        assert problem.message.endswith(f"; did you mean '{hint}'?"), problem.message


def test_an_unquoted_word_yaml_reads_as_a_boolean_says_to_quote_what_was_typed() -> None:
    # (`snmp.version: 3` is accepted as a number since issue 27; `off` cannot be.)
    text = REFERENCE.read_text().replace(
        "channel: alpha}", "channel: alpha, reboot_strategy: Off}", 1
    )
    (problem,) = check_text(text, "inventory.yaml").problems
    assert problem.check_id == "LAB005"
    assert 'put it in quotes: "off" (YAML reads Off unquoted as false)' in problem.message


def test_every_alias_points_at_a_value_some_enum_allows() -> None:
    values: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            values.update(v for v in node.get("enum", []) if isinstance(v, str))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema())
    assert {a: t for a, t in ENUM_ALIASES.items() if t not in values} == {}
    assert not set(ENUM_ALIASES) & values, "an alias must not be an allowed value itself"
