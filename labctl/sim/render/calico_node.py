"""The unit that runs BIRD 1.6 on a node standing in for calico-node (pure).

Only the simulated lab uses it (docs/calico.md): there is no calico-node here,
so each node runs the stock BIRD 1.6 binary it is given, with the ``bird.cfg``
that ``bird.py`` here writes as calico-node's confd would, at the path and
control socket calico-node uses; and gets a CNI configuration from the reference
plugins in place of the one calico-node installs, so its kubelet turns Ready.
"""

from __future__ import annotations

import json
import shlex

from labctl.inventory import topology
from labctl.inventory.model import Inventory, Server
from labctl.render.systemd import Unit, exec_command, unit_text
from labctl.sim.render.bird import CONFIG_PATH, CONTROL_SOCKET
from labctl.sim.render.kubernetes import CNI_CONF_DIR

UNIT_NAME = "calico-bird.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
# calico-node writes 10-calico.conflist; the stand-in's own name says it is not that.
CNI_PATH = f"{CNI_CONF_DIR}/10-labctl-stand-in.conflist"


def birdc(bird_binary: str) -> str:
    """birdc ships beside bird in the same package."""
    return bird_binary.rsplit("/", 1)[0] + "/birdc"


def unit(bird_binary: str) -> str:
    run_dir = CONTROL_SOCKET.rsplit("/", 1)[0]
    # calico-node's Felix turns forwarding on; a node is a router for its pods and,
    # with the mesh and switch peers, for the blocks it re-announces to the switches.
    start = (
        f"mkdir -p {run_dir} && sysctl -qw net.ipv4.ip_forward=1 && "
        f"exec {shlex.quote(bird_binary)} -f -c {CONFIG_PATH} -s {CONTROL_SOCKET}"
    )
    data: Unit = {
        "Unit": [
            ("Description", "BIRD 1.6 standing in for calico-node (written by labctl)"),
            ("After", "network-online.target"),
        ],
        "Service": [
            ("ExecStart", exec_command(["/bin/sh", "-c", start])),
            ("Restart", "always"),
            ("RestartSec", "2"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }
    return unit_text(data)


def cni_conflist(inventory: Inventory, server: Server) -> str | None:
    """The pod network configuration calico-node would install, stood in for by the
    reference CNI plugins: ``ptp`` (a veth per pod, a host route to it, as Calico
    does) with ``host-local`` addresses from the node's pod block, the block BIRD
    announces. None for a node with no block."""
    block = topology.blocks(inventory).get(server.name)
    if block is None:
        return None
    data = {
        "cniVersion": "0.4.0",
        "name": "k8s-pod-network",
        "plugins": [
            {
                "type": "ptp",
                "mtu": 1500,
                "ipMasq": inventory.cluster.calico.nat_outgoing,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": block}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
        ],
    }
    return json.dumps(data, indent=2) + "\n"
