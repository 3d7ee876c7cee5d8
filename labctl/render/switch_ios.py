"""A Cisco IOS access switch: VLANs, server ports, uplinks and its management SVI (pure).

The access switch carries no BGP: its job is to put each server NIC on the
VLANs of its networks (``render/switch_ports.py``) and to trunk them to the
core. Checked by golden files only; no IOS runs here (docs/calico.md).
"""

from __future__ import annotations

import ipaddress

from labctl.inventory.model import Inventory, Switch
from labctl.render.bgp_common import SecretFn, masking
from labctl.render.quoting import config_lines, hostname
from labctl.render.switch_ports import DEFAULT_VLAN, ports, vlans


def config(inventory: Inventory, switch: Switch, secret: SecretFn = masking) -> str:
    del secret  # no secrets on an access switch's ports
    lines = [f"hostname {hostname('switch name', switch.name)}", "!"]
    for v in vlans(inventory):
        lines += [f"vlan {v.id}", f" name {v.name}", "!"]
    for p in ports(inventory, switch):
        lines.append(f"interface {p.port.name}")
        if p.description:
            lines.append(f" description {p.description}")
        if p.mode == "access":
            if p.vlans[0] != DEFAULT_VLAN:
                lines.append(f" switchport access vlan {p.vlans[0]}")
            lines += [" switchport mode access", " spanning-tree portfast"]
        elif p.mode == "trunk":
            lines.append(f" switchport trunk allowed vlan {','.join(map(str, p.vlans))}")
            if p.native is not None:
                lines.append(f" switchport trunk native vlan {p.native}")
            lines.append(" switchport mode trunk")
        else:
            lines.append(" shutdown")
        lines.append("!")
    if switch.management is not None:
        m = switch.management
        network = inventory.network(m.network)
        net = ipaddress.ip_network(network.cidr)
        lines += [
            f"interface Vlan{network.vlan or DEFAULT_VLAN}",
            f" ip address {m.address} {net.netmask}",
            "!",
        ]
        if network.gateway:
            lines += [f"ip default-gateway {network.gateway}", "!"]
    lines.append("end")
    return config_lines("IOS configuration", lines)
