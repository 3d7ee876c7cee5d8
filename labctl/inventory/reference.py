"""Markdown references generated from the schema and the check registry (pure).

docs/inventory.md and docs/checks.md are outputs of these functions, never
edited by hand: `python scripts/gen_docs.py` rewrites them and a test fails
when they are stale.
"""

from __future__ import annotations

from typing import Any

from labctl.inventory.checks import REGISTRY

_SECTIONS = [
    ("(top level)", "#"),
    ("lab", "#/properties/lab"),
    ("lab.ssh", "#/$defs/ssh"),
    ("networks[]", "#/$defs/network"),
    ("servers[]", "#/$defs/server"),
    ("servers[].hardware", "#/$defs/hardware"),
    ("servers[].hardware.cpus", "#/$defs/hardware/properties/cpus"),
    ("servers[].bmc", "#/$defs/bmc"),
    ("servers[].nics[]", "#/$defs/nic"),
    ("servers[].nics[].addresses[]", "#/$defs/address"),
    ("servers[].disks[]", "#/$defs/disk"),
    ("servers[].os", "#/$defs/os"),
    ("switches[]", "#/$defs/switch"),
    ("switches[].ports[]", "#/$defs/switch_port"),
    ("pdus[]", "#/$defs/pdu"),
    ("pdus[].custom_profile", "#/$defs/pdu/properties/custom_profile"),
    ("pdus[].snmp", "#/$defs/snmp"),
    ("pdus[].outlets[]", "#/$defs/outlet"),
    ("cluster", "#/$defs/cluster"),
    ("cluster.kubernetes", "#/$defs/cluster/properties/kubernetes"),
    (
        "cluster.kubernetes.api_endpoint",
        "#/$defs/cluster/properties/kubernetes/properties/api_endpoint",
    ),
    ("cluster.pki", "#/$defs/cluster/properties/pki"),
    ("cluster.etcd", "#/$defs/cluster/properties/etcd"),
    ("cluster.calico", "#/$defs/cluster/properties/calico"),
    ("cluster.ceph", "#/$defs/cluster/properties/ceph"),
    ("cluster.ceph.pools[]", "#/$defs/cluster/properties/ceph/properties/pools/items"),
    (
        "cluster.ceph.filesystems[]",
        "#/$defs/cluster/properties/ceph/properties/filesystems/items",
    ),
]


def _at(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = schema
    for part in pointer.lstrip("#/").split("/") if pointer != "#" else []:
        node = node[part]
    return dict(node)


def _type(schema: dict[str, Any], node: dict[str, Any]) -> str:
    if "$ref" in node:
        target = node["$ref"].split("/")[-1]
        resolved = _at(schema, node["$ref"])
        if target in ("name", "size", "speed", "secret", "role"):
            return {
                "name": "name",
                "size": "size",
                "speed": "speed",
                "secret": "secret",
                "role": "role",
            }[target]
        if resolved.get("type") == "string" and "pattern" in resolved:
            return f"*{target}*"  # a grammar: listed under Types with its description
        return _type(schema, resolved) if "type" in resolved else target
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema, node.get('items', {}))}"
    return str(kind)


def _description(schema: dict[str, Any], node: dict[str, Any]) -> str:
    text = (
        node.get("description") or _at(schema, node["$ref"]).get("description", "")
        if "$ref" in node
        else node.get("description", "")
    )
    return str(text).replace("|", "\\|").replace("\n", " ")


def _grammars(schema: dict[str, Any]) -> list[str]:
    """The string types every value reaching a node is held to; `labctl validate` quotes
    the first sentence of a type's description when a value breaks it."""
    rows = [
        f"| *{name}* | {_description(schema, node)} |"
        for name, node in sorted(schema.get("$defs", {}).items())
        if node.get("type") == "string" and "pattern" in node and name not in ("name", "size")
    ]
    if not rows:
        return []
    return [
        "String types (grammars). Every string that reaches a node, a switch or a BMC has one;",
        "`labctl validate` refuses a value outside it (LAB005) and says which.",
        "",
        "| type | grammar |",
        "|---|---|",
        *rows,
        "",
    ]


def inventory_markdown(schema: dict[str, Any]) -> str:
    lines = [
        "# Inventory reference",
        "",
        "<!-- generated from schemas/inventory.schema.json by scripts/gen_docs.py; do not edit -->",
        "",
        str(schema.get("description", "")),
        "",
        "Types: *name* is a lowercase DNS label; *size* is a number with a unit (`900GB`, "
        "`32GiB`); *speed* is a link speed (`1G`, `10G`, ...); *secret* is `{env: NAME}`, "
        "`{file: PATH}` or (only with `lab.allow_literal_secrets`) a literal string.",
        "",
        *_grammars(schema),
    ]
    for title, pointer in _SECTIONS:
        node = _at(schema, pointer)
        props = node.get("properties", {})
        if not props:
            continue
        required = set(node.get("required", ()))
        lines += [f"## `{title}`", ""]
        if node.get("description") and title != "(top level)":
            lines += [str(node["description"]), ""]
        lines += ["| field | type | required | default | description |", "|---|---|---|---|---|"]
        for name, prop in props.items():
            default = prop.get("default")
            lines.append(
                f"| `{name}` | {_type(schema, prop)} | {'yes' if name in required else ''} | "
                f"{'' if default is None else f'`{default}`'} | {_description(schema, prop)} |"
            )
        lines.append("")
    return "\n".join(lines)


def checks_markdown() -> str:
    lines = [
        "# Checks",
        "",
        "<!-- generated from labctl/inventory/checks.py by scripts/gen_docs.py; do not edit -->",
        "",
        "`labctl validate` reports every finding as `file:line:col: severity ID path: sentence`.",
        "Errors make it exit 1; warnings do not, unless `--strict`. Ids are stable and never",
        "reused. Each id has a broken example in `tests/fixtures/bad/`.",
        "",
        "A *lab check* needs the lab kind, which the file does not say: it runs in `labctl",
        "plan` and `bootstrap` (for the chosen layers) and in `labctl validate --lab",
        "real|simulated`; on the simulated lab its findings are notes (docs/calico.md).",
        "",
        "| id | severity | what it checks |",
        "|---|---|---|",
    ]
    for check in sorted(REGISTRY.values(), key=lambda c: c.id):
        kind = " (lab check)" if check.lab_fn is not None else ""
        lines.append(f"| {check.id} | {check.severity}{kind} | {check.summary} |")
    lines.append("")
    return "\n".join(lines)
