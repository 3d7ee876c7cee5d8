"""A starter inventory for `labctl init`: a newcomer's first file, commented from the schema.

Someone who has never written an inventory should get one that validates as it stands
and says, next to each field, what the field is. ``starter_document`` builds the
document as data from a few choices (how many servers or which names, the OS, the PDU,
the switch, the networks); ``commented_yaml`` writes data as YAML with each field's
schema description as a comment above its first occurrence (PyYAML writes every value,
so quoting is PyYAML's; the schema is the only source of the words). Both are pure:
the CLI picks the Ceph fsid and writes the file.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

from labctl.inventory.schema import schema

OS_CHOICES = {"flatcar": "flatcar", "fcos": "fedora-coreos", "fedora-coreos": "fedora-coreos"}
PDU_PROFILES = ("apc-rpdu", "apc-rpdu2", "digipower-swh", "none")
SWITCH_PLATFORMS = ("frr", "eos", "ios", "none")
# How each platform names its front ports (what `show interfaces` prints).
_PORT_NAMES = {"frr": "swp{}", "eos": "Ethernet{}", "ios": "Gi1/0/{}", "none": "{}"}
MAX_SERVERS = 64
_WIDTH = 88


@dataclass(frozen=True)
class StarterOptions:
    """What `labctl init` asks for; everything else takes a sensible value."""

    servers: tuple[str, ...]
    fsid: str  # the Ceph cluster's UUID: chosen by the caller (uuid4), so this stays pure
    lab: str = "lab"
    domain: str = "lab.example.net"
    os: str = "flatcar"
    pdu_profile: str = "apc-rpdu"
    switch_platform: str = "frr"
    public_cidr: str = "192.0.2.0/24"
    mgmt_cidr: str = "198.51.100.0/24"
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    authorized_keys: tuple[str, ...] = ()  # OpenSSH public key lines
    # Calico's install manifest (url, sha256): a real lab needs it (LAB120); labctl never
    # guesses a digest, so without one the file leaves it out.
    calico_manifest: tuple[str, str] | None = None


def default_names(count: int) -> tuple[str, ...]:
    return tuple(f"node{i}" for i in range(1, count + 1))


def _hosts(cidr: str, wanted: int, what: str) -> list[str]:
    """``cidr``'s addresses from its network address: item i is the network's .i."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4:
        raise ValueError(f"{what} {cidr}: labctl init writes IPv4 networks only")
    # Only the first addresses: a /8 (or 0.0.0.0/0) must not be listed whole.
    first = itertools.islice(network.hosts(), wanted)
    hosts = [str(network.network_address), *(str(h) for h in first)]
    if len(hosts) < wanted + 1:
        raise ValueError(f"{what} {cidr} has {len(hosts) - 1} host addresses; {wanted} are needed")
    return hosts


def _roles(index: int, count: int) -> list[str]:
    """Three etcd members and monitors (one with fewer than three servers), the control
    plane on the first server, every server a worker and an OSD host."""
    core = index < (3 if count >= 3 else 1)
    roles = ["etcd"] if core else []
    roles += ["control-plane"] if index == 0 else []
    roles += ["worker"]
    roles += ["ceph-mon"] if core else []
    return [*roles, "ceph-osd"]


def starter_document(opts: StarterOptions) -> dict[str, Any]:
    """The starter inventory as data; ValueError names a choice that cannot work."""
    names = opts.servers
    if not 1 <= len(names) <= MAX_SERVERS:
        raise ValueError(f"labctl init writes 1 to {MAX_SERVERS} servers, not {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError("the server names repeat")
    if opts.os not in OS_CHOICES:
        raise ValueError(f"--os {opts.os}: expected one of flatcar, fcos")
    count = len(names)
    # public: .1 gateway, .10 the boot service (the operator's machine), servers from .11.
    public = _hosts(opts.public_cidr, 10 + count, "--public-cidr")
    # mgmt: .2 the switch, .5 the PDU, BMCs from .11.
    mgmt = _hosts(opts.mgmt_cidr, 10 + count, "--mgmt-cidr")
    switch = opts.switch_platform != "none"
    port = _PORT_NAMES[opts.switch_platform]
    servers = []
    for i, name in enumerate(names):
        nic: dict[str, Any] = {
            "name": "eno1",
            "mac": f"02:00:00:00:01:{i + 1:02x}",
            "speed": "1G",
        }
        if switch:
            nic |= {"switch": "tor", "port": port.format(i + 1)}
        nic |= {"pxe": True, "addresses": [{"network": "public", "address": public[11 + i]}]}
        servers.append(
            {
                "name": name,
                "bmc": {
                    "type": "ipmi",
                    "network": "mgmt",
                    "address": mgmt[11 + i],
                    "username": "labctl",
                    "password": {"env": "LABCTL_BMC_PASSWORD"},
                },
                "nics": [nic],
                "disks": [
                    {"device": "/dev/sda", "size": "240GB", "type": "ssd", "role": "os"},
                    {"device": "/dev/sdb", "size": "1TB", "type": "hdd", "role": "osd"},
                ],
                "os": {"distribution": OS_CHOICES[opts.os]},
                "roles": _roles(i, count),
            }
        )
    doc: dict[str, Any] = {
        "version": 1,
        "lab": {
            "name": opts.lab,
            "domain": opts.domain,
            "ssh": {
                "user": "core",
                "known_hosts": ".labctl/known_hosts",
                "authorized_keys": list(opts.authorized_keys),
            },
            "boot": {"network": "public", "address": public[10]},
        },
        "networks": [
            {
                "name": "public",
                "cidr": opts.public_cidr,
                "purpose": "public",
                "gateway": public[1],
            },
            {"name": "mgmt", "cidr": opts.mgmt_cidr, "purpose": "management"},
        ],
        "servers": servers,
    }
    if switch:
        doc["switches"] = [
            {
                "name": "tor",
                "model": "top-of-rack switch",
                "platform": opts.switch_platform,
                "management": {"network": "mgmt", "address": mgmt[2]},
                "ports": [
                    {"name": port.format(i + 1), "speed": "1G", "description": f"{n} eno1"}
                    for i, n in enumerate(names)
                ],
            }
        ]
    if opts.pdu_profile != "none":
        devices = [*names, *(["tor"] if switch else [])]
        doc["pdus"] = [
            {
                "name": "pdu1",
                "model": "PDU",
                "profile": opts.pdu_profile,
                "network": "mgmt",
                "address": mgmt[5],
                "outlet_count": max(8, len(devices)),
                "snmp": {
                    "username": "labctl",
                    "auth_key": {"env": "LABCTL_PDU_AUTH_KEY"},
                    "priv_key": {"env": "LABCTL_PDU_PRIV_KEY"},
                },
                "outlets": [{"outlet": i + 1, "device": d} for i, d in enumerate(devices)],
            }
        ]
    doc["cluster"] = {
        "kubernetes": {
            "api_endpoint": {"name": f"api.{opts.domain}", "address": public[11]},
            "pod_cidr": opts.pod_cidr,
            "service_cidr": opts.service_cidr,
        },
        "pki": {"passphrase": {"env": "LABCTL_CA_PASSPHRASE"}},
        **(
            {
                "calico": {
                    "manifest": dict(zip(("url", "sha256"), opts.calico_manifest, strict=True))
                }
            }
            if opts.calico_manifest
            else {}
        ),
        "ceph": {
            "fsid": opts.fsid,
            "public_network": "public",
            "pools": [{"name": "rbd", "application": "rbd", "size": min(3, count), "pg_num": 32}],
        },
    }
    return doc


# -- YAML with the schema's words as comments ---------------------------------


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(
        value, default_flow_style=True, allow_unicode=True, sort_keys=False, width=1 << 16
    )
    return text.strip().removesuffix("...").strip()


def _first_sentence(text: str) -> str:
    match = re.search(r"(?<!e\.g)(?<!i\.e)(?<!etc)\.(\s|$)", text)
    return text[: match.start() + 1] if match else text


class _Writer:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.lines: list[str] = []
        self.seen: set[str] = set()

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = {
                **self.root["$defs"][node["$ref"].rsplit("/", 1)[1]],
                **{k: v for k, v in node.items() if k != "$ref"},
            }
        return node

    def comment(self, where: str, node: dict[str, Any], indent: str) -> None:
        if where in self.seen:
            return
        self.seen.add(where)
        description = self.resolve(node).get("description")
        if description:
            for line in textwrap.wrap(_first_sentence(str(description)), _WIDTH - len(indent) - 2):
                self.lines.append(f"{indent}# {line}")

    def mapping(self, data: dict[str, Any], node: dict[str, Any], where: str, indent: str) -> None:
        props = self.resolve(node).get("properties", {})
        first = True
        for key, value in data.items():
            prop = props.get(key, {})
            path = f"{where}.{key}" if where else key
            if not indent and not first:
                self.lines.append("")
            self.comment(path, prop, indent)
            self.entry(f"{indent}{key}:", value, prop, path, indent + "  ")
            first = False

    def entry(self, head: str, value: Any, node: dict[str, Any], where: str, inner: str) -> None:
        if isinstance(value, dict) and not _flat(value):
            self.lines.append(head)
            self.mapping(value, node, where, inner)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            self.lines.append(head)
            items = self.resolve(node).get("items", {})
            for item in value:
                if _flat(item):
                    self.lines.append(f"{inner}- {_scalar(item)}")
                    continue
                start = len(self.lines)
                self.mapping(item, items, f"{where}[]", inner + "  ")
                # The item's first field line becomes its "- " line (comments stay above).
                for i in range(start, len(self.lines)):
                    if not self.lines[i].lstrip().startswith("#"):
                        self.lines[i] = f"{inner}- {self.lines[i][len(inner) + 2 :]}"
                        break
        else:
            self.lines.append(f"{head} {_scalar(value)}")


def _flat(value: dict[str, Any]) -> bool:
    """Written on one line: a small mapping of scalars ({env: NAME}, an address)."""
    return len(value) <= 4 and all(not isinstance(v, dict | list) for v in value.values())


def commented_yaml(data: dict[str, Any], header: list[str]) -> str:
    """``data`` as YAML, each field's schema description above its first occurrence."""
    writer = _Writer(schema())
    writer.lines += [f"# {line}" if line else "#" for line in header] + [""]
    writer.mapping(data, schema(), "", "")
    return "\n".join(writer.lines) + "\n"


HEADER = [
    "A starter inventory written by `labctl init`. Replace what is not your lab's",
    "truth: server names, MAC addresses (02:00:00:... are placeholders), addresses,",
    "disks, the switch ports. Versions are left out on purpose: they default to what",
    "this labctl release is tested with. docs/inventory.md describes every field;",
    "`labctl validate FILE` checks the file.",
]


def render_starter(opts: StarterOptions) -> str:
    """The commented starter inventory (ValueError names a choice that cannot work)."""
    return commented_yaml(starter_document(opts), HEADER)
