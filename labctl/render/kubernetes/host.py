"""The host runtime: the control plane as systemd units, and containerd to serve the kubelet.

The same binaries with the same flags as the static pods (``flags.py``), run from
``binary_dir`` instead of from images. The simulated lab uses it: its nodes share the
host's root, which has the built binaries and no images. A node in the host runtime
also gets a containerd unit of labctl's own (``labctl-containerd.service``, the
native snapshotter, state under ``/run/containerd``), since the simulated nodes run
no system containerd; the kubelet needs a CRI endpoint even with no pod to run.
"""

from __future__ import annotations

from labctl.inventory.model import Inventory, Server
from labctl.render.kubernetes import flags
from labctl.render.systemd import Unit

CONTAINERD_UNIT = "labctl-containerd.service"
CONTAINERD_CONFIG = "/etc/containerd/labctl-config.toml"
CNI_BIN_DIR = "/usr/lib/cni"
CNI_CONF_DIR = "/etc/cni/net.d"


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
        "Service": [("ExecStart", " ".join(argv)), ("Restart", "always"), ("RestartSec", "5")],
        "Install": [("WantedBy", "multi-user.target")],
    }


def containerd_config() -> str:
    """containerd's TOML, written from data: CRI on the kubelet's socket, native snapshots
    (a simulated node's /var is an overlay, which overlayfs cannot sit on)."""
    sections: list[tuple[str, list[tuple[str, str]]]] = [
        ("", [("version", "2"), ("root", '"/var/lib/containerd"'), ("state", '"/run/containerd"')]),
        ("grpc", [("address", '"/run/containerd/containerd.sock"')]),
        ('plugins."io.containerd.grpc.v1.cri".containerd', [("snapshotter", '"native"')]),
        # Debian's CNI plugins live in /usr/lib/cni; the configuration is the pod
        # network's to write (calico-node on a real lab, the calico layer's stand-in here).
        (
            'plugins."io.containerd.grpc.v1.cri".cni',
            [("bin_dir", f'"{CNI_BIN_DIR}"'), ("conf_dir", f'"{CNI_CONF_DIR}"')],
        ),
    ]
    lines: list[str] = []
    for name, entries in sections:
        if name:
            lines += ["", f"[{name}]"]
        lines += [f"{'  ' if name else ''}{key} = {value}" for key, value in entries]
    return "\n".join(lines) + "\n"


def containerd_unit() -> Unit:
    return {
        "Unit": [("Description", "containerd for the kubelet (written by labctl, host runtime)")],
        "Service": [
            ("ExecStart", f"/usr/bin/containerd --config {CONTAINERD_CONFIG}"),
            ("Restart", "always"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }
