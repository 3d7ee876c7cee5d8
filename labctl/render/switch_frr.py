"""An FRR configuration for a switch that routes the pod network (pure).

What Edge-Core hardware runs under SONiC, and what the simulated lab's
switches run. Written in the form and order FRR 8.4's ``show running-config``
prints (router first, then prefix lists and route maps; the defaults of
``frr defaults datacenter`` left out), so ``labctl switch diff`` compares like
with like. One peer group ``CALICO`` holds every node that peers with the
switch; its import filter accepts only what the nodes announce
(``render/bgp_common.py``), blocks and single pod addresses included. A
switch read over SNMP (``bgp_status: snmp``) gets ``agentx``, so bgpd's SNMP
module attaches to the switch's snmpd.
"""

from __future__ import annotations

from functools import partial

from labctl.inventory import topology
from labctl.inventory.model import Inventory, Switch
from labctl.render.bgp_common import SecretFn, Written, announced, masking
from labctl.render.quoting import config_lines, config_word, hostname

GROUP = "CALICO"
IMPORT = "CALICO-IN"


# A password is one CLI word; its printed stand-in (with blanks) is shown as is.
PASSWORD = Written(
    value=partial(config_word, "a BGP password", show=False), stand_in=lambda text: text
)


def config(inventory: Inventory, switch: Switch, secret: SecretFn = masking) -> str:
    calico = inventory.cluster.calico
    sessions = topology.switch_sessions(inventory, switch.name)
    lines = [
        "frr defaults datacenter",
        f"hostname {hostname('switch name', switch.name)}",
    ]
    if switch.bgp_status == "snmp":
        # bgpd serves BGP4-MIB to snmpd over AgentX (its -M snmp module); FRR prints it here.
        lines.append("agentx")
    lines += [
        "service integrated-vtysh-config",
        "!",
    ]
    if switch.asn is not None and sessions:
        lines += [f"router bgp {switch.asn}"]
        if switch.router_id:
            lines.append(f" bgp router-id {switch.router_id}")
        lines += [
            f" neighbor {GROUP} peer-group",
            f" neighbor {GROUP} remote-as {calico.asn}",
        ]
        password = next(
            (p.password for p in calico.peers if p.switch == switch.name and p.password), None
        )
        if password is not None:
            lines.append(f" neighbor {GROUP} password {secret(password, PASSWORD)}")
        lines += [
            f" neighbor {GROUP} timers {calico.keepalive_time} {calico.hold_time}",
            # A node that comes back is peered again within a second, not FRR's 10.
            f" neighbor {GROUP} timers connect 1",
        ]
        seen = set()
        for s in sessions:
            if s.local_address not in seen:
                seen.add(s.local_address)
                lines.append(f" neighbor {s.local_address} peer-group {GROUP}")
        lines += [
            " !",
            " address-family ipv4 unicast",
            f"  neighbor {GROUP} route-map {IMPORT} in",
            " exit-address-family",
            "exit",
            "!",
        ]
        for i, a in enumerate(announced(inventory), start=1):
            longer = f" le {a.up_to}" if a.up_to > a.prefixlen else ""
            lines.append(f"ip prefix-list {IMPORT} seq {i * 5} permit {a.cidr}{longer}")
        lines += [
            "!",
            f"route-map {IMPORT} permit 10",
            f" match ip address prefix-list {IMPORT}",
            "exit",
            "!",
        ]
    lines.append("end")
    return config_lines("FRR configuration", lines)
