"""An Arista EOS configuration: ports and VLANs, routed addresses, BGP with the nodes (pure).

The same fabric as the FRR render (one peer group of nodes, an import filter
of what they announce), in EOS's syntax and three-space indentation. Nothing
here has run on EOS in this project: it is checked by golden files only
(docs/calico.md says so).
"""

from __future__ import annotations

import ipaddress
from functools import partial

from labctl.inventory import topology
from labctl.inventory.model import Inventory, Switch
from labctl.render.bgp_common import SecretFn, Written, announced, masking
from labctl.render.quoting import config_lines, config_word, hostname
from labctl.render.switch_ports import DEFAULT_VLAN, ports, vlans

GROUP = "CALICO"
IMPORT = "CALICO-IN"


def _prefix(inventory: Inventory, network: str, address: str) -> str:
    net = ipaddress.ip_network(inventory.network(network).cidr)
    return f"{address}/{net.prefixlen}"


# A password is one CLI word; its printed stand-in (with blanks) is shown as is.
PASSWORD = Written(
    value=partial(config_word, "a BGP password", show=False), stand_in=lambda text: text
)


def config(inventory: Inventory, switch: Switch, secret: SecretFn = masking) -> str:
    calico = inventory.cluster.calico
    lines = [f"hostname {hostname('switch name', switch.name)}", "!"]
    for v in vlans(inventory):
        lines += [f"vlan {v.id}", f"   name {v.name}", "!"]
    for p in ports(inventory, switch):
        lines.append(f"interface {p.port.name}")
        if p.description:
            lines.append(f"   description {p.description}")
        if p.mode == "access":
            if p.vlans[0] != DEFAULT_VLAN:
                lines.append(f"   switchport access vlan {p.vlans[0]}")
        elif p.mode == "trunk":
            lines.append("   switchport mode trunk")
            lines.append(f"   switchport trunk allowed vlan {','.join(map(str, p.vlans))}")
            if p.native is not None:
                lines.append(f"   switchport trunk native vlan {p.native}")
        else:
            lines.append("   shutdown")
        lines.append("!")
    if switch.management is not None:
        m = switch.management
        lines += [
            "interface Management1",
            f"   ip address {_prefix(inventory, m.network, m.address)}",
            "!",
        ]
    for iface in switch.interfaces:
        vlan = inventory.network(iface.network).vlan or DEFAULT_VLAN
        lines += [
            f"interface Vlan{vlan}",
            f"   ip address {_prefix(inventory, iface.network, iface.address)}",
            "!",
        ]
    lines += ["ip routing", "!"]
    sessions = topology.switch_sessions(inventory, switch.name)
    if switch.asn is not None and sessions:
        prefixes = announced(inventory)
        lines.append(f"ip prefix-list {IMPORT}")
        for i, a in enumerate(prefixes, start=1):
            longer = f" le {a.up_to}" if a.up_to > a.prefixlen else ""
            lines.append(f"   seq {i * 5} permit {a.cidr}{longer}")
        lines += [
            "!",
            f"route-map {IMPORT} permit 10",
            f"   match ip address prefix-list {IMPORT}",
            "!",
            f"router bgp {switch.asn}",
        ]
        if switch.router_id:
            lines.append(f"   router-id {switch.router_id}")
        lines += [
            f"   neighbor {GROUP} peer group",
            f"   neighbor {GROUP} remote-as {calico.asn}",
            f"   neighbor {GROUP} timers {calico.keepalive_time} {calico.hold_time}",
            f"   neighbor {GROUP} route-map {IMPORT} in",
        ]
        password = next(
            (p.password for p in calico.peers if p.switch == switch.name and p.password), None
        )
        if password is not None:
            lines.append(f"   neighbor {GROUP} password 0 {secret(password, PASSWORD)}")
        seen = set()
        for s in sessions:
            if s.local_address not in seen:
                seen.add(s.local_address)
                lines.append(f"   neighbor {s.local_address} peer group {GROUP}")
        lines += ["   !", "   address-family ipv4", f"      neighbor {GROUP} activate", "!"]
    lines.append("end")
    return config_lines("EOS configuration", lines)
