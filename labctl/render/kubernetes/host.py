"""The host runtime: the control plane as systemd units, and containerd to serve the kubelet.

The same binaries with the same flags as the static pods (``flags.py``), run from
``binary_dir`` instead of from images. A real lab's kubelet uses the OS's containerd
in either runtime; the simulated lab's nodes run none, and its platform brings a
containerd of labctl's (``Platform.node_runtime``, ``labctl/sim/render/kubernetes.py``).
"""

from __future__ import annotations

from labctl.inventory.model import Inventory, Server
from labctl.render.kubernetes import flags
from labctl.render.systemd import Unit, exec_command


def unit_name(component: str) -> str:
    return f"{component}.service"


def unit_path(name: str) -> str:
    return f"/etc/systemd/system/{name}"


def component_unit(inventory: Inventory, server: Server, component: str, bin_dir: str) -> Unit:
    argv = [f"{bin_dir}/{component}", *flags.component(inventory, server, component)]
    return {
        "Unit": [
            ("Description", f"Kubernetes {component} on {server.name} (written by labctl)"),
            ("Wants", "network-online.target"),
            ("After", "network-online.target"),
        ],
        "Service": [("ExecStart", exec_command(argv)), ("Restart", "always"), ("RestartSec", "5")],
        "Install": [("WantedBy", "multi-user.target")],
    }
