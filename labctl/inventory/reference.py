"""Markdown references generated from the schema and the check registry (pure).

docs/inventory.md and docs/checks.md are outputs of these functions, never
edited by hand: `python scripts/gen_docs.py` rewrites them and a test fails
when they are stale.
"""

from __future__ import annotations

from typing import Any

import yaml

from labctl.inventory.checks import REGISTRY
from labctl.inventory.registry import RETIRED

# String grammars the opening paragraph explains by name rather than in the table.
_NAMED = ("name", "size", "secret")


def _target(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its ``$ref`` followed (the node's own description wins)."""
    while "$ref" in node:
        node = {
            **schema["$defs"][_target(node["$ref"])],
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    return node


def yaml_value(value: Any) -> str:
    """``value`` as YAML writes it in flow style: false, [17, 3], '3', []."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 16)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _enum(values: list[Any]) -> str:
    return " \\| ".join(f"`{yaml_value(v)}`" for v in values)


def _range(node: dict[str, Any]) -> str:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum")
    above = "exclusiveMinimum" in node
    if low is not None and high is not None:
        return f" ({'over' if above else 'from'} {low} to {high})"
    if low is not None:
        return f" ({'over' if above else 'at least'} {low})"
    if high is not None:
        return f" (at most {high})"
    return ""


class _Page:
    """Walks the schema from its root: one section per object, in document order."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.sections: list[str] = []
        self.seen: dict[str, str] = {}  # $defs object -> the section that lists it
        self.later: list[tuple[str, dict[str, Any]]] = []

    def type_of(self, node: dict[str, Any], title: str) -> str:
        """The type column; an object met here gets its own section, titled ``title``."""
        if "$ref" in node:
            name = _target(node["$ref"])
            target = self.schema["$defs"][name]
            if name in _NAMED or (target.get("type") == "string" and "pattern" in target):
                return f"*{name}*"
            if "enum" in target:
                return _enum(target["enum"])
            if target.get("type") == "object":
                if name in self.seen:
                    return f"object, as `{self.seen[name]}`"
                self.seen[name] = title
                self.later.append((title, node))
                return f"object (`{title}`)"
            return self.type_of(target, title)
        if "enum" in node:
            return _enum(node["enum"])
        if "const" in node:
            return f"`{yaml_value(node['const'])}`"
        if "oneOf" in node or "anyOf" in node:
            branches = node.get("oneOf") or node.get("anyOf") or []
            return " or ".join(self.type_of(n, title) for n in branches)
        kind = node.get("type", "any")
        if isinstance(kind, list):
            return " or ".join(kind)
        if kind == "array":
            items = self.type_of(node.get("items", {}), f"{title}[]")
            unique = ", no repeats" if node.get("uniqueItems") else ""
            least = f", at least {node['minItems']}" if node.get("minItems") else ""
            return f"list of {items}{least}{unique}"
        if kind == "object" and "properties" in node:
            self.later.append((title, node))
            return f"object (`{title}`)"
        if kind == "object":
            keys = self.type_of(node.get("propertyNames", {"type": "string"}), title)
            values = self.type_of(node.get("additionalProperties", {}), title)
            return f"mapping of {keys} to {values}"
        if kind == "string" and "pattern" in node:
            return f"string matching `{_cell(node['pattern'])}`"
        return f"{kind}{_range(node)}"

    def section(self, title: str, node: dict[str, Any], top: bool = False) -> None:
        if "$ref" in node:  # a shared object: introduced by its own description
            node = self.schema["$defs"][_target(node["$ref"])]
        if "items" in node and "properties" not in node:
            node = _resolve(self.schema, node["items"])
        required = set(node.get("required", ()))
        lines = [f"## `{title}`", ""]
        if node.get("description") and not top:
            lines += [_cell(node["description"]), ""]
        lines += ["| field | type | required | default | description |", "|---|---|---|---|---|"]
        pending = self.later
        self.later = []
        for name, prop in node["properties"].items():
            child = f"{name}" if top else f"{title}.{name}"
            default = f"`{yaml_value(prop['default'])}`" if "default" in prop else ""
            lines.append(
                f"| `{name}` | {self.type_of(prop, child)} | {'yes' if name in required else ''} "
                f"| {default} | {_cell(_resolve(self.schema, prop).get('description', ''))} |"
            )
        lines += [""]
        lines += _conditions(node)
        self.sections += lines
        mine, self.later = self.later, pending
        for child_title, child_node in mine:
            self.section(child_title, child_node)

    def secret(self) -> None:
        node = self.schema["$defs"]["secret"]
        lines = ["## *secret*", "", _cell(node["description"]), ""]
        lines += ["| field | form | type | description |", "|---|---|---|---|"]
        for branch in node["oneOf"]:
            for name, prop in branch.get("properties", {}).items():
                lines.append(
                    f"| `{name}` | `{{{name}: ...}}` | {self.type_of(prop, name)} | "
                    f"{_cell(prop.get('description', ''))} |"
                )
            if branch.get("type") == "string":
                lines.append("| | a plain string | string | A literal secret (see above). |")
        self.sections += [*lines, ""]


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _conditions(node: dict[str, Any]) -> list[str]:
    """Sentences for the schema's conditional requirements (if/then, dependentRequired)."""
    out: list[str] = []
    rules = [node, *node.get("allOf", ())]
    for rule in rules:
        when, then = rule.get("if"), rule.get("then")
        if not (when and then and then.get("required")):
            continue
        conds = [
            f"`{field}` is "
            + " or ".join(f"`{yaml_value(v)}`" for v in spec.get("enum", [spec.get("const")]))
            for field, spec in when.get("properties", {}).items()
            if "const" in spec or "enum" in spec
        ]
        needed = ", ".join(f"`{f}`" for f in then["required"])
        out.append(f"When {' and '.join(conds)}: {needed} required.")
    for field, needs in node.get("dependentRequired", {}).items():
        out.append(f"With `{field}`: {', '.join(f'`{n}`' for n in needs)} required.")
    return [*out, ""] if out else []


def _grammars(schema: dict[str, Any]) -> list[str]:
    """The string types every value reaching a node is held to; `labctl validate` quotes
    the first sentence of a type's description when a value breaks it."""
    rows = [
        f"| *{name}* | {_cell(node.get('description', ''))} |"
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
    """docs/inventory.md: every object, field, enum value and default of ``schema``, found
    by walking it from its root through every ``$ref`` (no hand-kept list of sections)."""
    page = _Page(schema)
    page.section("(top level)", schema, top=True)
    page.secret()
    lines = [
        "# Inventory reference",
        "",
        "<!-- generated from schemas/inventory.schema.json by scripts/gen_docs.py; do not edit -->",
        "",
        str(schema.get("description", "")),
        "",
        "Types: *name* is a lowercase DNS label; *size* is a number with a unit (`900GB`, "
        "`32GiB`); *speed* is a link speed (`1G`, `10G`, ...); *secret* is `{env: NAME}`, "
        "`{file: PATH}` or (only with `lab.allow_literal_secrets`) a literal string "
        "(its own section, below); an *integer* may be written with a zero fraction "
        "(`1024.0` is `1024`, as JSON Schema has it).",
        "",
        "A field left out takes its default (as YAML writes it); a field with neither a "
        "default nor *yes* under required may be left out. `labctl init` writes a starter "
        "file (docs/commands.md).",
        "",
        *_grammars(schema),
        *page.sections,
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


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
    lines += ["", "Retired ids (never reused):", "", "| id | why |", "|---|---|"]
    lines += [f"| {id_} | {why} |" for id_, why in sorted(RETIRED.items())]
    lines.append("")
    return "\n".join(lines)
