"""The unit that runs BIRD 1.6 on a node standing in for calico-node (pure).

Only the simulated lab uses it (docs/calico.md): there is no calico-node here,
so each node runs the stock BIRD 1.6 binary it is given, with the ``bird.cfg``
that ``render/bird.py`` writes as calico-node's confd would, at the path and
control socket calico-node uses.
"""

from __future__ import annotations

import shlex

from labctl.render.bird import CONFIG_PATH, CONTROL_SOCKET
from labctl.render.systemd import Unit, unit_text

UNIT_NAME = "calico-bird.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"


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
            ("ExecStart", f"/bin/sh -c {shlex.quote(start)}"),
            ("Restart", "always"),
            ("RestartSec", "2"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }
    return unit_text(data)
