"""What nodes sharing one kernel need around the kubelet: the simulated lab's (pure).

The simulated nodes are network namespaces of one host: one kernel, one cgroup tree,
no system containerd. So their platform (``labctl/sim/platform.py``,
``Platform.node_runtime``) gives every node, whatever the control plane's runtime:

* a containerd of labctl's (``labctl-containerd.service``, the native snapshotter,
  state under ``/run/containerd``): the kubelet needs a CRI endpoint even with no pod
  to run; in the pods runtime started through a wrapper that mounts the cgroup
  hierarchies runc needs;
* kubelet settings a shared host forces: cgroupfs without per-QoS cgroups (three
  kubelets share one cgroup tree), no swap or cgroup v1 refusal;
* a kubelet wrapper: cgroup hierarchies mounted again in the kubelet's own mount
  namespace (a node's /sys is the fresh sysfs of `ip netns exec`), and kernel tunables
  the kubelet may set seen through files, so it never changes the host's settings;
* kube-proxy leaving conntrack's limit as the host set it.

A real lab's nodes get none of this (``labctl/platform.py``): the OS's containerd, the
kubelet and kube-proxy as the inventory says.
"""

from __future__ import annotations

from typing import Any

from labctl.data import shell
from labctl.platform import NodeFile, NodeRuntime
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes.host import unit_path
from labctl.render.systemd import Unit, exec_command, unit_text

CONTAINERD_UNIT = "labctl-containerd.service"
CONTAINERD_CONFIG = "/etc/containerd/labctl-config.toml"
# Where the node's containerd finds CNI plugins: the usual folder, in the node's own
# /opt (its /usr is the host's, read-only), holding links to Debian's reference plugins
# (/usr/lib/cni) and, with a calico-node build, to Calico's.
CNI_BIN_DIR = "/opt/cni/bin"
DEBIAN_CNI_DIR = "/usr/lib/cni"
CNI_CONF_DIR = "/etc/cni/net.d"
CONTAINERD_WRAPPER = "/etc/containerd/labctl-containerd-wrapper.sh"
HOST_WRAPPER = f"{c.CONFIG_DIR}/kubelet-host-wrapper.sh"
# The sandbox image containerd's CRI starts every pod with; in the pods runtime it is
# one of the images labctl builds and imports (labctl/sim/images.py).
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.2"

# What a shared host forces on the kubelet, over its KubeletConfiguration.
KUBELET_SETTINGS: dict[str, Any] = {
    "cgroupDriver": "cgroupfs",
    "cgroupsPerQOS": False,
    "enforceNodeAllocatable": [],
    "failSwapOn": False,
    "failCgroupV1": False,
    "localStorageCapacityIsolation": False,
    "makeIPTablesUtilChains": False,
}
# The simulated nodes are network namespaces of one kernel: nf_conntrack_max is the
# kernel's, read-only outside the host's own namespace, and kube-proxy exits on
# "permission denied" trying to raise it. 0 leaves it as the host set it.
KUBE_PROXY_SETTINGS: dict[str, Any] = {"conntrack": {"maxPerCore": 0}}


def host_wrapper() -> str:
    """The simulated runtimes' kubelet wrapper: the kubelet in a mount namespace of its own.

    A simulated node's /sys is the fresh sysfs `ip netns exec` mounts, with no cgroup
    hierarchies under it: they are mounted again here, as /proc/self/cgroup lists them.
    Then the kernel tunables the kubelet insists on become files, and the kubelet runs.
    Those mounts stay the kubelet's; the ones it makes under its own directory (a pod's
    ServiceAccount token, on tmpfs) must reach containerd, which runs in the node's
    namespace and bind-mounts them into the pod's containers: that directory is made a
    shared mount first, in the node's namespace, and the kubelet's copy stays its peer.
    The tunables are the values the kubelet's container manager wants (pkg/kubelet/cm):
    it finds them already so, in files bound over /proc/sys, and never sets the
    host's. The script is labctl/data/scripts/kubelet-shared-kernel-wrapper.sh; its
    cgroup mounts are containerd-pods-wrapper.sh's (a test keeps the two the same).
    """
    return shell.script("kubelet-shared-kernel-wrapper")


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
        # Links to Debian's CNI plugins (and Calico's) in /opt/cni/bin; the configuration is the pod
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


def mount_cgroups() -> list[str]:
    """The shell lines that mount the cgroup hierarchies as /proc/self/cgroup lists them,
    when none are mounted: the block the shipped wrappers share (containerd-pods-wrapper.sh),
    for a node's boot, which must give runc the same hierarchies before any container."""
    lines = shell.script("containerd-pods-wrapper").splitlines()
    start = lines.index("if ! grep -q ' cgroup' /proc/self/mounts; then")
    return lines[start : lines.index("fi", start) + 1]


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


def shared_kernel(runtime: str) -> NodeRuntime:
    """Everything above, for a node whose control plane runs as ``runtime``."""
    containerd = [
        NodeFile(CONTAINERD_CONFIG, containerd_config()),
        NodeFile(unit_path(CONTAINERD_UNIT), unit_text(containerd_unit(runtime))),
    ]
    if runtime == "pods":
        containerd.append(NodeFile(CONTAINERD_WRAPPER, containerd_wrapper(), 0o755))
    return NodeRuntime(
        services=((CONTAINERD_UNIT, tuple(containerd)),),
        kubelet_settings=KUBELET_SETTINGS,
        kubelet_wrapper=NodeFile(HOST_WRAPPER, host_wrapper(), 0o755),
        kube_proxy_settings=KUBE_PROXY_SETTINGS,
    )
