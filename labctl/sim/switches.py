"""The simulated lab's routing switches as data, and the FRR they boot with.

Every switch the nodes peer with becomes a namespace of its own, built like a
simulated node (``sim/node.py``: its own root overlays, UTS name, sshd and the
``systemctl`` shim), so labctl reaches it over SSH on its management address as
it would a real switch. Its NICs are veths into the fabric bridges: one on the
management network and one per routed interface in the inventory. It forwards
packets, and boots FRR (zebra, bgpd, staticd) as its ``frr`` unit, reading
``/etc/frr/frr.conf`` as Debian's FRR does: that file is what the calico layer
writes. The switch runs FRR whatever its platform (FRR stands in for EOS).
"""

from __future__ import annotations

import hashlib
import ipaddress
import shlex
from pathlib import Path

from labctl.calico import topology
from labctl.inventory.model import Inventory
from labctl.sim.plan import SimBridge, SimNic, SimNode

FRR = "/usr/lib/frr"
UNIT = "frr.service"


def _mac(lab_id: str, switch: str, index: int) -> str:
    digest = hashlib.sha256(f"{lab_id}:{switch}:{index}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])  # locally administered


def build_switches(
    inventory: Inventory, bridges: tuple[SimBridge, ...], lab_id: str
) -> tuple[SimNode, ...]:
    """The peering switches as simulated boxes (none when nobody peers with a switch)."""
    nets = {n.name: n for n in inventory.networks}
    bridge_of = {b.network: b for b in bridges}
    out = []
    for s_index, sw in enumerate(topology.peering_switches(inventory)):
        if sw.management is None or sw.management.network not in bridge_of:
            continue  # unreachable: LAB090 and the layer's SSH name the problem
        wanted = [("mgmt0", sw.management), *((f"eth{i}", a) for i, a in enumerate(sw.interfaces))]
        nics = []
        gateway = None
        for n_index, (name, address) in enumerate(wanted):
            bridge = bridge_of.get(address.network)
            if bridge is None:
                continue
            net = ipaddress.ip_network(nets[address.network].cidr)
            nics.append(
                SimNic(
                    name,
                    _mac(lab_id, sw.name, n_index),
                    bridge.name,
                    f"lw{lab_id}{s_index}x{n_index}",
                    (f"{address.address}/{net.prefixlen}",),
                )
            )
            if gateway is None and nets[address.network].gateway:
                gateway = nets[address.network].gateway
        if gateway is None:
            # The fabric's own address on the management bridge leads back to the host.
            gateway = bridge_of[sw.management.network].address.split("/")[0]
        listen = tuple(a.split("/")[0] for nic in nics for a in nic.addresses)
        out.append(
            SimNode(
                sw.name, f"lab-{lab_id}-{sw.name}", tuple(nics), gateway, sw.management.address,
                listen,
            )
        )  # fmt: skip
    return tuple(out)


def frr_unit() -> str:
    """FRR's daemons in the foreground, so the systemctl shim's process group is FRR."""
    run = "/run/frr"
    daemons = " & ".join(
        f"{FRR}/{d} -u frr -g frr -f /etc/frr/frr.conf" for d in ("zebra", "bgpd", "staticd")
    )
    script = f"mkdir -p {run}; chown frr:frr {run}; {daemons} & wait"
    return (
        "[Unit]\nDescription=FRR on a simulated switch (zebra, bgpd, staticd)\n\n"
        f"[Service]\nExecStart=/bin/sh -c {shlex.quote(script)}\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def prepare(node_dir: Path) -> None:
    """The switch's FRR unit, enabled, in its own /etc (its overlay's upper layer)."""
    units = node_dir / "upper" / "etc" / "systemd" / "system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (units / UNIT).write_text(frr_unit())
    link = wants / UNIT
    if not link.is_symlink():
        link.symlink_to(f"/etc/systemd/system/{UNIT}")
