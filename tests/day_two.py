"""The reference inventory changed as an operator would on day two, for `labctl plan` tests.

One server added (``monsoon``, a worker on the ToR's fourth port, the public /28's
last free address) and component versions set, written beside the lab's own
inventory (relative paths in it, the PKI store and the secret files, start there).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

NEW_SERVER = "monsoon"


def changed_inventory(
    text: str,
    *,
    add_server: bool = True,
    etcd: str | None = None,
    kubernetes: str | None = None,
    ceph: str | None = None,
) -> str:
    """``text`` (the reference inventory) with a server added and versions set."""
    doc: dict[str, Any] = yaml.safe_load(text)
    if add_server:
        wind = next(s for s in doc["servers"] if s["name"] == "wind")
        new = copy.deepcopy(wind)
        new.pop("description", None)
        new["name"] = NEW_SERVER
        new["bmc"]["address"] = "10.31.0.14"
        new["nics"] = [
            dict(
                wind["nics"][0],
                mac="78:e7:d1:7a:8b:04",
                port="Gi1/0/4",
                addresses=[{"network": "public", "address": "31.31.164.219"}],
            )
        ]
        new["disks"] = [wind["disks"][0]]
        new["roles"] = ["worker"]
        doc["servers"].append(new)
        tor = next(s for s in doc["switches"] if s["name"] == "tor")
        tor["ports"].insert(3, {"name": "Gi1/0/4", "speed": "1G", "description": "monsoon eno1"})
    cluster = doc["cluster"]
    for name, version in (("etcd", etcd), ("kubernetes", kubernetes), ("ceph", ceph)):
        if version is not None:
            cluster[name]["version"] = version
    return str(yaml.safe_dump(doc, sort_keys=False))


def write_beside(inventory: Path, name: str, text: str) -> Path:
    """``text`` as ``name`` in the inventory's directory."""
    path = inventory.parent / name
    path.write_text(text, encoding="utf-8")
    return path
