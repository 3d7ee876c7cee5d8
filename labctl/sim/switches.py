"""The simulated lab's routing switches as data, and the FRR they boot with.

Every switch the nodes peer with becomes a namespace of its own, built like a
simulated node (``sim/node.py``: its own root overlays, UTS name, sshd and the
``systemctl`` shim), so labctl reaches it over SSH on its management address as
it would a real switch. Its NICs are veths into the fabric bridges: one on the
management network and one per routed interface in the inventory. It forwards
packets, and boots FRR (zebra, bgpd, staticd) as its ``frr`` unit, reading
``/etc/frr/frr.conf`` as Debian's FRR does: that file is what the calico layer
writes. The switch runs FRR whatever its platform (FRR stands in for EOS).
A switch whose BGP status is read over SNMP (``bgp_status: snmp``) also runs
net-snmp's snmpd on its management address, as the AgentX master bgpd's SNMP
module attaches to (``sim/bgp_agent.py`` says what that takes), inside the
same unit: restarting FRR restarts its agent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shlex
from pathlib import Path

from labctl.inventory import topology
from labctl.inventory.model import Inventory
from labctl.inventory.problems import format_path
from labctl.secrets.references import resolve
from labctl.sim import bgp_agent
from labctl.sim import node as sim_node
from labctl.sim.records import SimBridge, SimNic, SimNode

FRR = "/usr/lib/frr"
UNIT = "frr.service"
# The switch's own paths (its /etc is an overlay's upper layer, /run its own tmpfs).
AGENTX_DIR = "/run/agentx"
AGENTX = f"{AGENTX_DIR}/master"
SNMPD_CONF = "/etc/snmp/labctl-bgp.conf"
SUBAGENT_DIR = "/etc/frr/snmp"  # FRR's own SNMP settings: SNMPCONFPATH for bgpd
SNMP_STATE = "/var/lib/labctl-snmp"


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


def frr_unit(snmp: bool = False) -> str:
    """FRR's daemons in the foreground, so the systemctl shim's process group is FRR.

    ``snmp``: snmpd too, and bgpd with its AgentX module (``agentx`` in frr.conf
    turns it on; bgpd finds snmpd whichever starts first).
    """
    run = "/run/frr"
    prepare = f"mkdir -p {run}; chown frr:frr {run}"
    bgpd = f"{FRR}/bgpd -u frr -g frr -f /etc/frr/frr.conf"
    daemons = [f"{FRR}/zebra -u frr -g frr -f /etc/frr/frr.conf", bgpd]
    if snmp:
        prepare += f"; mkdir -p {AGENTX_DIR} {SNMP_STATE}; chmod 755 {AGENTX_DIR}"
        daemons[1] = f"SNMPCONFPATH={SUBAGENT_DIR} {bgpd} -M snmp"
        daemons.append(
            f"SNMP_PERSISTENT_DIR={SNMP_STATE} MIBS= {bgp_agent.SNMPD} -f -Lf "
            f"/var/log/snmpd-bgp.log -C -c {SNMPD_CONF} -p /run/snmpd-bgp.pid"
        )
    daemons.append(f"{FRR}/staticd -u frr -g frr -f /etc/frr/frr.conf")
    script = f"{prepare}; {' & '.join(daemons)} & wait"
    return (
        "[Unit]\nDescription=FRR on a simulated switch (zebra, bgpd, staticd)\n\n"
        f"[Service]\nExecStart=/bin/sh -c {shlex.quote(script)}\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def prepare(node_dir: Path, snmp: bool = False) -> None:
    """The switch's FRR unit, enabled, in its own /etc (its overlay's upper layer)."""
    units = node_dir / "upper" / "etc" / "systemd" / "system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (units / UNIT).write_text(frr_unit(snmp))
    link = wants / UNIT
    if not link.is_symlink():
        link.symlink_to(f"/etc/systemd/system/{UNIT}")


def prepare_snmp(inventory: Inventory, state: Path, base_dir: Path) -> list[str]:
    """snmpd for every peering switch read over SNMP, with the inventory's credentials.

    Returns the switches given one. The credentials come from the secrets the
    inventory names, as the simulated PDUs' do; snmpd.conf is 0600 in the
    switch's own /etc.
    """
    done = []
    for sw in topology.peering_switches(inventory):
        if sw.bgp_status != "snmp" or sw.snmp is None or sw.management is None:
            continue
        snmp = sw.snmp
        where = format_path((*sw.path, "snmp"))
        community = username = auth_key = priv_key = ""
        if snmp.community is not None:
            community = resolve(snmp.community, used_at=f"{where}.community", base_dir=base_dir)
        if snmp.username and snmp.auth_key is not None and snmp.priv_key is not None:
            username = snmp.username
            auth_key = resolve(snmp.auth_key, used_at=f"{where}.auth_key", base_dir=base_dir)
            priv_key = resolve(snmp.priv_key, used_at=f"{where}.priv_key", base_dir=base_dir)
        spec = bgp_agent.AgentSpec(
            sw.name, sw.management.address, snmp.port, Path(SNMP_STATE), Path(AGENTX),
            community, username, auth_key, priv_key,
        )  # fmt: skip
        node_dir = sim_node.node_dir(state, sw.name)
        etc = node_dir / "upper" / "etc"
        conf = etc / SNMPD_CONF.removeprefix("/etc/")
        conf.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(bgp_agent.render_snmpd_conf(spec))
        subagent = etc / SUBAGENT_DIR.removeprefix("/etc/") / f"{bgp_agent.SUBAGENT_APP}.conf"
        subagent.parent.mkdir(parents=True, exist_ok=True)
        subagent.write_text(bgp_agent.render_subagent_conf(Path(AGENTX)))
        subagent.chmod(0o644)
        prepare(node_dir, snmp=True)
        done.append(sw.name)
    return done
