"""The host runtime: the control plane as systemd units, and containerd to serve the kubelet.

The same binaries with the same flags as the static pods (``flags.py``), run from
``binary_dir`` instead of from images. Nodes that share one kernel (the simulated
lab's platform, ``Platform.shares_kernel``, whatever the runtime) also get a containerd
unit of labctl's own (``labctl-containerd.service``, the native snapshotter, state
under ``/run/containerd``), since the simulated nodes run no system containerd; the
kubelet needs a CRI endpoint even with no pod to run. A real lab's kubelet uses the
OS's containerd in either runtime.
"""

from __future__ import annotations

from labctl.data import shell
from labctl.inventory.model import Inventory, Server
from labctl.render.kubernetes import flags
from labctl.render.systemd import Unit, exec_command

CONTAINERD_UNIT = "labctl-containerd.service"
CONTAINERD_CONFIG = "/etc/containerd/labctl-config.toml"
CNI_BIN_DIR = "/usr/lib/cni"
CNI_CONF_DIR = "/etc/cni/net.d"
CONTAINERD_WRAPPER = "/etc/containerd/labctl-containerd-wrapper.sh"
# The sandbox image containerd's CRI starts every pod with; in the pods runtime it is
# one of the images labctl builds and imports (labctl/sim/images.py).
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.2"


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


def containerd_config() -> str:
    """containerd's TOML, written from data: CRI on the kubelet's socket, native snapshots
    (a simulated node's /var is an overlay, which overlayfs cannot sit on)."""
    sections: list[tuple[str, list[tuple[str, str]]]] = [
        ("", [("version", "2"), ("root", '"/var/lib/containerd"'), ("state", '"/run/containerd"')]),
        ("grpc", [("address", '"/run/containerd/containerd.sock"')]),
        # The sandbox image named, so CRI never pulls its own default (pause:3.6); OOM
        # scores no lower than containerd's own, since this host refuses negative ones
        # (the kubelet asks -998 for sandboxes, and runc's start then fails).
        (
            'plugins."io.containerd.grpc.v1.cri"',
            [("sandbox_image", f'"{SANDBOX_IMAGE}"'), ("restrict_oom_score_adj", "true")],
        ),
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


def containerd_wrapper() -> str:
    """The pods runtime's containerd start: runc needs the cgroup hierarchies, which a
    simulated node's fresh /sys lacks; they are mounted in the node's own mount
    namespace, which the kubelet (and so every hostPath it creates) shares. It also
    removes the empty container cgroups a node's power-off left behind (containerd
    puts each at /k8s.io/ID of the host's tree). The script is
    labctl/data/scripts/containerd-pods-wrapper.sh."""
    return shell.script("containerd-pods-wrapper")


def containerd_unit(runtime: str = "host") -> Unit:
    argv = ["/usr/bin/containerd", "--config", CONTAINERD_CONFIG]
    if runtime == "pods":
        argv = ["/bin/sh", CONTAINERD_WRAPPER, *argv]
    return {
        "Unit": [
            ("Description", f"containerd for the kubelet (written by labctl, {runtime} runtime)")
        ],
        "Service": [
            ("ExecStart", exec_command(argv)),
            ("Restart", "always"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }
