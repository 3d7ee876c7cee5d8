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

from labctl.inventory.model import Inventory, Server
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes import flags
from labctl.render.systemd import Unit, exec_command

UNIT_NAME = "kubelet.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
HOST_WRAPPER = f"{c.CONFIG_DIR}/kubelet-host-wrapper.sh"

# What the kubelet's container manager wants these to be (pkg/kubelet/cm); on a host
# shared by simulated nodes it finds them already so, in files bound over /proc/sys.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


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


def mount_cgroups() -> list[str]:
    """Shell lines mounting the cgroup hierarchies, as /proc/self/cgroup lists them, when
    none are mounted (a simulated node's /sys is the fresh sysfs `ip netns exec` mounts)."""
    return [
        "if ! grep -q ' cgroup' /proc/self/mounts; then",
        "  mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup",
        "  while IFS=: read -r _ controllers _; do",
        '    if [ -z "$controllers" ]; then',
        "      mkdir -p /sys/fs/cgroup/unified",
        "      mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified",
        "    else",
        "      dir=/sys/fs/cgroup/${controllers#name=}",
        "      opts=$controllers",
        "      case $controllers in name=*) opts=none,$controllers ;; esac",
        '      mkdir -p "$dir"',
        '      mount -t cgroup -o "$opts" cgroup "$dir"',
        "    fi",
        "  done < /proc/self/cgroup",
        "fi",
    ]


def host_wrapper() -> str:
    """The simulated runtimes' kubelet wrapper: the kubelet in a mount namespace of its own.

    A simulated node's /sys is the fresh sysfs `ip netns exec` mounts, with no cgroup
    hierarchies under it: they are mounted again here, as /proc/self/cgroup lists them.
    Then the kernel tunables the kubelet insists on become files, and the kubelet runs.
    Those mounts stay the kubelet's; the ones it makes under its own directory (a pod's
    ServiceAccount token, on tmpfs) must reach containerd, which runs in the node's
    namespace and bind-mounts them into the pod's containers: that directory is made a
    shared mount first, in the node's namespace, and the kubelet's copy stays its peer.
    """
    kubelet_dir = c.KUBELET_DIR
    lines = [
        "#!/bin/sh",
        "# Written by labctl (simulated runtimes): cgroups visible, kernel tunables as files.",
        "set -e",
        'if [ "${LABCTL_KUBELET_NS:-}" != 1 ]; then',
        f"  mkdir -p {kubelet_dir}",
        f"  mountpoint -q {kubelet_dir} || mount --bind {kubelet_dir} {kubelet_dir}",
        f"  mount --make-shared {kubelet_dir}",
        # The sim's systemctl starts enabled units at boot in name order, kubelet before
        # labctl-containerd, and restarts none: the kubelet exits when it finds no CRI
        # socket, so it waits for containerd's (up to 30 s) as After= would order it.
        # Waiting here, before the namespace is copied, also keeps the copy from catching
        # containerd's wrapper half-way through mounting the cgroup hierarchies.
        "  i=0",
        f"  while [ ! -S {c.CONTAINERD_SOCKET} ] && [ $i -lt 300 ]; do",
        "    sleep 0.1; i=$((i + 1))",
        "  done",
        '  LABCTL_KUBELET_NS=1 exec unshare --mount --propagation unchanged /bin/sh "$0" "$@"',
        "fi",
        *mount_cgroups(),
        "d=/run/labctl/kubelet-sysctl",
        "mkdir -p $d",
    ]
    for name, value in KUBELET_SYSCTLS.items():
        flat = name.replace("/", ".")
        lines.append(f"echo {value} > $d/{flat}")
        lines.append(f"mount --bind $d/{flat} /proc/sys/{name}")
    lines.append('exec "$@"')
    return "\n".join(lines) + "\n"


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
