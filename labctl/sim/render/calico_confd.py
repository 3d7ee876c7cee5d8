"""calico-node's confd and Calico's CNI plugin on a simulated node (pure).

Where a calico-node build is at hand (``scripts/build-calico.sh``), the simulated
nodes run Calico's own programs in place of labctl's renderings, once the
calico-resources layer put Calico's objects on the API: ``calico-node -confd`` as a
unit, as calico-node runs it in its pod (Kubernetes datastore, ``NODENAME``, BIRD as
the backend), with confd's own conf.d and templates from the same build, writing
``/etc/calico/confd/config/bird.cfg``, which BIRD 1.6 then runs; and Calico's CNI
plugin with Calico's IPAM (``10-calico.conflist``), so each pod's address comes from a
block Calico's IPAM gave the node, the block confd announces.

What differs from calico-node's pod, and why: the programs authenticate with the
``calico-node`` client certificate (the ServiceAccount's user name and groups, see
``pki/specs.py``), not a projected token, since no kubelet runs them; and confd's
``reload_cmd`` (``sv hup bird``: calico-node's runit) becomes ``birdc configure``
on BIRD's control socket, as the node runs BIRD under systemd, not runit.
"""

from __future__ import annotations

import json
import re
import shlex

import yaml

from labctl.inventory.model import Inventory, Server
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes.kubeconfig import node_kubeconfig
from labctl.render.systemd import Unit, exec_command, unit_text
from labctl.sim.render.bird import CONFIG_PATH, CONTROL_SOCKET
from labctl.sim.render.calico_node import CNI_PATH as STAND_IN_CNI
from labctl.sim.render.calico_node import CONFD_MARK
from labctl.sim.render.kubernetes import CNI_BIN_DIR, CNI_CONF_DIR

UNIT_NAME = "calico-confd.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
CONFD_DIR = "/etc/calico/confd"
KUBECONFIG = "/etc/calico/calico-node.kubeconfig"
CNI_PATH = f"{CNI_CONF_DIR}/10-calico.conflist"
CNI_LOG_DIR = "/var/log/calico/cni"
# calico-node's start-up writes the node's name here; Calico's CNI plugin refuses to add
# or delete a pod until it exists ("check that the calico/node container is running").
NODENAME_FILE = "/var/lib/calico/nodename"
# The client certificate in the PKI store (pki/specs.py): calico-node's ServiceAccount.
CERT = "calico-node"
SERVICE_ACCOUNT_USER = "system:serviceaccount:kube-system:calico-node"
# Calico's CNI binaries, linked where the node's containerd looks for plugins.
CNI_PLUGINS = ("calico", "calico-ipam")


# What calico-node's start-up writes in the datastore once it is set up (``calico-node
# -startup``, not run here): Calico's CNI plugin refuses to add a pod until it says
# the datastore is ready.
CLUSTER_INFORMATION = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "ClusterInformation",
    "metadata": {"name": "default"},
    "spec": {"datastoreReady": True, "clusterType": "k8s,bgp"},
}


def reload_command(bird_binary: str) -> str:
    """What confd runs after it wrote a BIRD file: BIRD reads its configuration again."""
    birdc = bird_binary.rsplit("/", 1)[0] + "/birdc"
    # With the file named: BIRD may have started on labctl's (calico_node.STAND_IN_CONFIG).
    return f"{shlex.quote(birdc)} -s {CONTROL_SOCKET} configure '\"{CONFIG_PATH}\"'"


def conf_d(toml: str, bird_binary: str) -> str:
    """One of confd's conf.d files as the node gets it: ``reload_cmd`` through BIRD's
    control socket in place of runit's ``sv hup bird``; everything else Calico's."""
    # No BIRD for IPv6 runs on the nodes (the lab is IPv4): its files are written only.
    ipv6 = re.search(r'^reload_cmd = "sv hup bird6\b', toml, flags=re.M) is not None
    reload = "true" if ipv6 else reload_command(bird_binary)
    reload = reload.replace("\\", "\\\\").replace('"', '\\"')
    moved, n = re.subn(r'^reload_cmd = ".*"$', f'reload_cmd = "{reload}"', toml, flags=re.M)
    if n != 1:
        raise ValueError("a confd template resource without exactly one reload_cmd")
    return moved


def kubeconfig(inventory: Inventory) -> str:
    """calico-node's kubeconfig on a node: its client certificate, by path."""
    return yaml.safe_dump(node_kubeconfig(inventory, SERVICE_ACCOUNT_USER, CERT), sort_keys=False)


def unit(calico_node: str, bird_binary: str, server: Server) -> str:
    """``calico-node -confd`` for ``server``, as calico-node's pod runs it."""
    bird_dir = bird_binary.rsplit("/", 1)[0]
    environment = {
        "DATASTORE_TYPE": "kubernetes",
        "KUBECONFIG": KUBECONFIG,
        "NODENAME": server.name,
        "CALICO_NETWORKING_BACKEND": "bird",
        # confd asks the API which group serves Calico's kinds once, at start.
        "CALICO_API_GROUP": "projectcalico.org/v3",
        # confd's check_cmd runs `bird -p`; the node has BIRD 1.6 where setup.sh put it.
        "PATH": f"{bird_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    out, program = f"{CONFD_DIR}/config", shlex.quote(calico_node)
    start = f"mkdir -p {out} && cd {out} && exec {program} -confd -confd-confdir={CONFD_DIR}"
    data: Unit = {
        "Unit": [
            ("Description", "calico-node's confd: BIRD's configuration from Calico's resources"),
            ("After", "network-online.target"),
        ],
        "Service": [
            *[("Environment", shlex.quote(f"{k}={v}")) for k, v in environment.items()],
            # In confd's output folder, as calico-node runs it: confd's check_cmd has
            # BIRD parse each file there, and bird.cfg includes its siblings by name.
            (
                "ExecStart",
                exec_command(["/bin/sh", "-c", start]),
            ),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }
    return unit_text(data)


def cni_conflist(inventory: Inventory, server: Server) -> str:
    """The CNI configuration calico-node's install writes: Calico's plugin, Calico's IPAM
    (addresses from labctl's IPPool, in blocks affine to the node), the Kubernetes
    datastore."""
    data = {
        "name": "k8s-pod-network",
        "cniVersion": "0.3.1",
        "plugins": [
            {
                "type": "calico",
                "log_level": "info",
                "log_file_path": f"{CNI_LOG_DIR}/cni.log",
                "datastore_type": "kubernetes",
                "nodename": server.name,
                "mtu": 1500,
                "ipam": {"type": "calico-ipam"},
                "policy": {"type": "k8s"},
                "kubernetes": {"kubeconfig": KUBECONFIG},
            },
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def link_plugins(built: str) -> tuple[str, ...]:
    """The command that links Calico's CNI binaries from the build into the CNI folder
    (the simulated nodes see the host's build cache) and takes the stand-in's CNI
    configuration away (a lab whose calico layer wrote one before confd ran)."""
    targets = " ".join(shlex.quote(f"{built}/bin/{p}") for p in CNI_PLUGINS)
    return (
        "sh",
        "-c",
        f"mkdir -p {CNI_LOG_DIR} && ln -sf {targets} {CNI_BIN_DIR}/ && rm -f {STAND_IN_CNI}",
    )


def waits_for(bird_binary: str) -> str:
    """True (exit 0) once BIRD runs confd's configuration: confd wrote it and BIRD's
    status answers through its control socket."""
    birdc = shlex.quote(bird_binary.rsplit("/", 1)[0] + "/birdc")
    return (
        f"grep -qx '{CONFD_MARK}' {CONFIG_PATH} && "
        f"{birdc} -s {CONTROL_SOCKET} show status | grep -q 'Daemon is up'"
    )


def kube_ssl_paths() -> tuple[str, str]:
    """The client certificate and key calico-node's kubeconfig names."""
    return c.ssl(f"{CERT}.pem"), c.ssl(f"{CERT}-key.pem")
