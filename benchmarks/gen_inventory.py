"""Generate a valid inventory of N servers, with switches, PDUs and networks to match.

Usage: python benchmarks/gen_inventory.py N > inventory-N.yaml

Deterministic for a given N: servers get addresses from a /16 public block, a
/16 management block and a /16 storage block; every 40 servers share a 48-port
top-of-rack switch and every 8 server PSUs a PDU.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

import yaml

SERVERS_PER_SWITCH = 40
OUTLETS_PER_PDU = 8
ROLES_CYCLE = (["etcd", "control-plane", "worker", "ceph-mon", "ceph-osd"], ["worker", "ceph-osd"])


def _mac(prefix: int, n: int) -> str:
    raw = (0x02 << 40) | (prefix << 32) | n  # locally administered, unicast
    return ":".join(f"{(raw >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def generate(count: int) -> dict[str, Any]:
    public = ipaddress.ip_network("100.64.0.0/16")
    mgmt = ipaddress.ip_network("10.40.0.0/16")
    storage = ipaddress.ip_network("10.41.0.0/16")
    servers: list[dict[str, Any]] = []
    switches: list[dict[str, Any]] = []
    pdus: list[dict[str, Any]] = []
    core_members = 3 if count >= 3 else 1
    for i in range(count):
        name = f"node{i:05d}"
        sw_index = i // SERVERS_PER_SWITCH
        if i % SERVERS_PER_SWITCH == 0:
            switches.append(
                {
                    "name": f"tor{sw_index:04d}",
                    "model": "Generic 48x10G",
                    "management": {"network": "mgmt", "address": str(mgmt[60000 + sw_index])},
                    "ports": [],
                }
            )
        port = f"Ethernet{i % SERVERS_PER_SWITCH + 1}"
        switches[-1]["ports"].append({"name": port, "speed": "10G"})
        roles = ROLES_CYCLE[0] if i < core_members else ROLES_CYCLE[1]
        servers.append(
            {
                "name": name,
                "hardware": {
                    "model": "Generic 1U",
                    "cpus": {"model": "Xeon", "count": 2},
                    "memory": "128GiB",
                },
                "bmc": {
                    "type": "ipmi",
                    "network": "mgmt",
                    "address": str(mgmt[10 + i]),
                    "username": "labctl",
                    "password": {"env": "LABCTL_BMC_PASSWORD"},
                },
                "nics": [
                    {
                        "name": "eno1",
                        "mac": _mac(1, i),
                        "speed": "10G",
                        "switch": switches[-1]["name"],
                        "port": port,
                        "pxe": True,
                        "addresses": [
                            {"network": "public", "address": str(public[10 + i])},
                            {"network": "storage", "address": str(storage[10 + i])},
                        ],
                    }
                ],
                "disks": [
                    {"device": "/dev/sda", "size": "480GB", "type": "ssd", "role": "os"},
                    {"device": "/dev/sdb", "size": "4TB", "type": "hdd", "role": "osd"},
                ],
                "os": {"distribution": "flatcar", "channel": "stable"},
                "roles": roles,
            }
        )
        outlet = i % OUTLETS_PER_PDU + 1
        if outlet == 1:
            pdus.append(
                {
                    "name": f"pdu{len(pdus):04d}",
                    "model": "APC AP7921",
                    "profile": "apc-rpdu",
                    "network": "mgmt",
                    "address": str(mgmt[50000 + len(pdus)]),
                    "outlet_count": OUTLETS_PER_PDU,
                    "snmp": {
                        "version": "3",
                        "username": "labctl",
                        "auth_key": {"env": "LABCTL_PDU_AUTH_KEY"},
                        "priv_key": {"env": "LABCTL_PDU_PRIV_KEY"},
                    },
                    "outlets": [],
                }
            )
        pdus[-1]["outlets"].append({"outlet": outlet, "device": name})
    return {
        "version": 1,
        "lab": {"name": f"gen{count}", "domain": "gen.example.net"},
        "networks": [
            {"name": "public", "cidr": str(public), "purpose": "public", "gateway": str(public[1])},
            {"name": "mgmt", "cidr": str(mgmt), "purpose": "management"},
            {"name": "storage", "cidr": str(storage), "purpose": "storage"},
        ],
        "servers": servers,
        "switches": switches,
        "pdus": pdus,
        "cluster": {
            "name": f"gen{count}",
            "kubernetes": {
                "version": "1.36.3",
                "api_endpoint": {"name": "api.gen.example.net", "address": str(public[10])},
                "pod_cidr": "10.188.0.0/16",
                "service_cidr": "10.189.0.0/16",
            },
            "etcd": {"version": "3.4.23"},  # the image tag etcd's container runtime needs
            "calico": {"asn": 64512},
            "ceph": {
                "version": "16.2.15",  # the image tag Ceph's container runtime needs
                "fsid": "00000000-0000-4000-8000-000000000000",
                "public_network": "public",
                "cluster_network": "storage",
                "pools": [{"name": "rbd", "application": "rbd", "size": min(3, count)}],
            },
        },
    }


def peer_with_frr_core(data: dict[str, Any]) -> dict[str, Any]:
    """Make ``data``'s first switch an FRR core switch every node peers with (what the
    simulated lab can run), in place; returned for chaining."""
    public = data["networks"][0]
    core = data["switches"][0]
    address = public["cidr"].split("/")[0].rsplit(".", 1)[0] + ".2"
    core.update(
        {"platform": "frr", "asn": 64513, "router_id": address,
         "interfaces": [{"network": "public", "address": address}]}
    )  # fmt: skip
    data["cluster"]["calico"] = {
        "asn": 64512,
        "keepalive_time": 3,
        "hold_time": 9,
        "peers": [{"switch": core["name"], "address": address, "nodes": "all"}],
    }
    return data


def render(count: int) -> str:
    text: str = yaml.safe_dump(generate(count), sort_keys=False, width=120)
    return text


if __name__ == "__main__":
    sys.stdout.write(render(int(sys.argv[1])))
