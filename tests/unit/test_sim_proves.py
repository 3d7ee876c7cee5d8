"""docs/sim.md's table of what the simulated lab proves has a row for every path.

A real lab may take any layer in ``LAYERS``, any runtime, switch platform, PDU
profile, OS distribution and BMC type the inventory schema allows. Each must be
a row of "What the simulated lab proves, and what it does not", so a new enum
value landing without a row fails here instead of being silently unproven; and
every test a row names must exist, so the table cannot point at nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from labctl.layers import LAYERS

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## What the simulated lab proves, and what it does not"


def rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "docs" / "sim.md").read_text()
    assert SECTION in text
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found: dict[str, tuple[str, str]] = {}
    for line in body.splitlines():
        # A cell may hold an escaped pipe (`\|`), as GitHub's tables allow.
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) != 3 or cells[0] in ("path", "---"):
            continue
        found[cells[0].replace("`", "")] = (cells[1], cells[2])
    return found


def expected() -> set[str]:
    schema = json.loads((ROOT / "labctl" / "data" / "inventory.schema.json").read_text())
    defs = schema["$defs"]
    cluster = defs["cluster"]["properties"]
    paths = {f"layer: {layer.name}" for layer in LAYERS}
    for part in ("etcd", "ceph", "kubernetes"):
        paths |= {f"{part} runtime: {v}" for v in cluster[part]["properties"]["runtime"]["enum"]}
    paths |= {f"switch platform: {v}" for v in defs["switch"]["properties"]["platform"]["enum"]}
    paths |= {f"PDU profile: {v}" for v in defs["pdu"]["properties"]["profile"]["enum"]}
    paths |= {f"install: {v}" for v in defs["os"]["properties"]["distribution"]["enum"]}
    paths |= {f"BMC: {v}" for v in defs["bmc"]["properties"]["type"]["enum"]}
    return paths


def test_every_path_a_real_lab_takes_has_a_row() -> None:
    missing = sorted(expected() - set(rows()))
    assert missing == [], f"docs/sim.md has no row for {missing}"


def test_every_row_says_what_proves_it_or_why_nothing_can() -> None:
    for path, (proof, gap) in rows().items():
        assert proof or gap, path
        assert "tests/" in proof or gap, f"{path}: names no test and no reason"


def test_every_test_a_row_names_exists() -> None:
    for path, (proof, _) in rows().items():
        current = ""
        for file, name in re.findall(r"(tests/[\w/]+\.py)?::(\w+)", proof):
            current = file or current
            assert current, f"{path}: ::{name} without a file"
            source = (ROOT / current).read_text()
            assert re.search(rf"def {name}\(", source), f"{path}: {current}::{name} is not there"
        for file in re.findall(r"(tests/[\w/]+\.(?:py|yaml))", proof):
            assert (ROOT / file).exists(), f"{path}: {file} is not there"
