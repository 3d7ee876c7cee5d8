"""Felix, calico-node's data-plane agent, as a unit on a simulated node (pure).

Where the simulated nodes run calico-node's confd and CNI plugin (``calico_confd.py``),
they may also run its Felix (``calico-node -felix``), the program that reads Calico's
objects and the pods the CNI plugin wired and programs the node's data plane: the
``cali-*`` iptables chains (policy, NAT for traffic leaving an IPPool with
``natOutgoing``, the drop of forwarded traffic to advertised service prefixes), the
ipsets those chains match, and the routes to each pod's veth. It runs as calico-node
runs it in its pod (Kubernetes datastore, ``NODENAME``, health on its default port,
which ``calico-node -felix-ready``, the pod's readiness probe, asks), with the same
``calico-node`` client certificate confd has.

What differs from calico-node's pod, and why (docs/calico.md, "Felix on the simulated
nodes"): the build has no libbpf (``CGO_ENABLED=0``), and Felix's start-up clean-up of
a BPF connect-time load balancer then panics, so Felix's own switch for its FV tests
skips it; the iptables backend is named (``NFT``: Debian's iptables, kube-proxy's on the
nodes) rather than guessed; usage reporting is off (it would reach the Internet); IPv4
only, as the lab.
"""

from __future__ import annotations

import shlex

from labctl.inventory.model import Server
from labctl.render.systemd import Unit, exec_command, unit_text
from labctl.sim.render.calico_confd import KUBECONFIG

UNIT_NAME = "calico-felix.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
# Felix's default health port, where `calico-node -felix-ready` asks (inside the node's
# network namespace: every node has its own).
HEALTH_PORT = 9099


def environment(server: Server) -> dict[str, str]:
    """calico-node's environment for Felix on ``server`` (Kubernetes datastore)."""
    return {
        "DATASTORE_TYPE": "kubernetes",
        "FELIX_DATASTORETYPE": "kubernetes",
        "KUBECONFIG": KUBECONFIG,
        "NODENAME": server.name,
        "FELIX_FELIXHOSTNAME": server.name,
        "FELIX_IPV6SUPPORT": "false",
        "FELIX_USAGEREPORTINGENABLED": "false",
        "FELIX_HEALTHENABLED": "true",
        "FELIX_HEALTHPORT": str(HEALTH_PORT),
        "FELIX_LOGSEVERITYSCREEN": "info",
        "FELIX_LOGFILEPATH": "none",
        # No syslog on the nodes ("Failed to connect to syslog"); the unit's log has it all.
        "FELIX_LOGSEVERITYSYS": "none",
        # calico-node's manifest's value: a node's own traffic from a pod is not policed.
        "FELIX_DEFAULTENDPOINTTOHOSTACTION": "ACCEPT",
        # Debian's iptables, which kube-proxy programs on the nodes, is the nf_tables one.
        "FELIX_IPTABLESBACKEND": "NFT",
        # No libbpf in the build: skip the BPF clean-up whose stub panics (module doc).
        "FELIX_DebugSkipCTLBCleanup": "true",
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }


def unit(calico_node: str, server: Server) -> str:
    """``calico-node -felix`` for ``server``, as calico-node's pod runs it."""
    data: Unit = {
        "Unit": [
            ("Description", "calico-node's Felix: the node's data plane from Calico's resources"),
            ("After", "network-online.target"),
        ],
        "Service": [
            *[("Environment", shlex.quote(f"{k}={v}")) for k, v in environment(server).items()],
            ("ExecStart", exec_command([calico_node, "-felix"])),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }
    return unit_text(data)


def ready(calico_node: str) -> tuple[str, ...]:
    """calico-node's readiness probe for Felix (exit 0 once Felix says it is ready)."""
    return (calico_node, "-felix-ready")
