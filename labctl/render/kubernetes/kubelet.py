"""The kubelet's configuration and unit on every node.

KubeletConfiguration: webhook authentication and authorization against the API,
client certificates checked against the lab CA, the node's serving certificate
from the pki layer (labctl rotates it, so the kubelet does not), cluster DNS on
the service network, static pods from ``/etc/kubernetes/manifests``, containerd's
socket. Nodes that share one kernel (the simulated lab's, ``Platform.shares_kernel``;
never a matter of the runtime) differ in what a shared host forces:
cgroupfs without per-QoS cgroups (three kubelets share one cgroup tree), no swap or
cgroup v1 refusal, cgroup hierarchies mounted again in the kubelet's own mount
namespace (a node's /sys is the fresh sysfs of `ip netns exec`), and kernel tunables
the kubelet may set seen through files, so it never changes the host's settings.
"""

from __future__ import annotations

from typing import Any

from labctl.data import shell
from labctl.inventory.model import Inventory, Server
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes import flags
from labctl.render.systemd import Unit, exec_command

UNIT_NAME = "kubelet.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
HOST_WRAPPER = f"{c.CONFIG_DIR}/kubelet-host-wrapper.sh"


def configuration(
    inventory: Inventory, server: Server, shares_kernel: bool = False
) -> dict[str, Any]:
    k = inventory.cluster.kubernetes
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": c.ssl("ca.pem")},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [c.cluster_dns(inventory)],
        "clusterDomain": k.cluster_domain,
        "staticPodPath": c.MANIFESTS_DIR,
        "tlsCertFile": c.ssl(f"kubelet-{server.name}.pem"),
        "tlsPrivateKeyFile": c.ssl(f"kubelet-{server.name}-key.pem"),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "containerRuntimeEndpoint": f"unix://{c.CONTAINERD_SOCKET}",
        "cgroupDriver": "systemd",
        "readOnlyPort": 0,
    }
    if shares_kernel:
        config.update(
            {
                "cgroupDriver": "cgroupfs",
                "cgroupsPerQOS": False,
                "enforceNodeAllocatable": [],
                "failSwapOn": False,
                "failCgroupV1": False,
                "localStorageCapacityIsolation": False,
                "makeIPTablesUtilChains": False,
            }
        )
    return config


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


def exec_start(inventory: Inventory, server: Server, bin_dir: str, shares_kernel: bool) -> str:
    argv = [f"{bin_dir}/kubelet", *flags.kubelet(inventory, server)]
    if shares_kernel:
        argv = ["/bin/sh", HOST_WRAPPER, *argv]
    return exec_command(argv)


def unit(inventory: Inventory, server: Server, bin_dir: str, shares_kernel: bool = False) -> Unit:
    return {
        "Unit": [
            ("Description", f"Kubernetes kubelet on {server.name} (written by labctl)"),
            ("Wants", "network-online.target containerd.service"),
            ("After", "network-online.target containerd.service"),
        ],
        "Service": [
            ("ExecStartPre", exec_command(["/bin/mkdir", "-p", c.MANIFESTS_DIR, c.KUBELET_DIR])),
            ("ExecStart", exec_start(inventory, server, bin_dir, shares_kernel)),
            ("Restart", "always"),
            ("RestartSec", "5"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }
