"""A newcomer leaves out what they should not have to choose: versions, names, the ASN,
the OS channel and the hardware; labctl fills in the schema's defaults (what this release
is tested with), and the model takes them from the schema, not from a second copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labctl.inventory import check_text
from labctl.inventory.schema import schema
from tests.conftest import REFERENCE


def _without_choices() -> str:
    data: dict[str, Any] = yaml.safe_load(REFERENCE.read_text())
    cluster = data["cluster"]
    for section in ("kubernetes", "etcd", "ceph"):
        del cluster[section]["version"]
    del cluster["name"]
    del cluster["calico"]["asn"]
    for server in data["servers"]:
        del server["os"]["channel"]
        del server["hardware"]
    return yaml.safe_dump(data, sort_keys=False)


def _schema_default(*pointer: str) -> Any:
    node: Any = schema()
    for part in pointer:
        node = node[part]
    return node["default"]


def test_a_file_without_versions_names_asn_channel_or_hardware_is_clean(tmp_path: Path) -> None:
    text = _without_choices()
    result = check_text(text, "lab.yaml", tmp_path / "lab.yaml")
    assert [f"{p.check_id} {p.message}" for p in result.errors] == []
    inv = result.inventory
    assert inv is not None
    cluster = "$defs", "cluster", "properties"
    assert inv.cluster.kubernetes.version == _schema_default(
        *cluster, "kubernetes", "properties", "version"
    )
    assert inv.cluster.etcd.version == _schema_default(*cluster, "etcd", "properties", "version")
    assert inv.cluster.ceph is not None
    assert inv.cluster.ceph.version == _schema_default(*cluster, "ceph", "properties", "version")
    assert inv.cluster.calico.asn == _schema_default(*cluster, "calico", "properties", "asn")
    assert inv.cluster.name == inv.lab.name
    channel = _schema_default("$defs", "os", "properties", "channel")
    assert {s.os.channel for s in inv.servers} == {channel}
    assert {s.hardware for s in inv.servers} == {None}


def test_tested_versions_are_what_the_project_builds_and_runs() -> None:
    """The defaults are the versions the reference lab runs and tools/kubernetes pins."""
    reference = yaml.safe_load(REFERENCE.read_text())["cluster"]
    cluster = "$defs", "cluster", "properties"
    for section in ("kubernetes", "etcd", "ceph"):
        default = _schema_default(*cluster, section, "properties", "version")
        assert reference[section]["version"] == default, section
    go_mod = (REFERENCE.parent / "tools/kubernetes/go.mod").read_text()
    pinned = _schema_default(*cluster, "kubernetes", "properties", "version")
    assert f"k8s.io/kubernetes v{pinned}\n" in go_mod


def test_the_model_reads_every_default_from_the_schema() -> None:
    """model.default() walks the schema, so the docs and the model cannot disagree."""
    from labctl.inventory.model import default

    assert default("bmc", "cipher_suites") == (17, 3)
    assert default("cluster", "calico", "peers", "nodes") == "all"
    assert default("#", "lab", "ssh", "user") == "core"
