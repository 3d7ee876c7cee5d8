"""The simulated lab's platform: what stands in for what, read from `labctl sim env`.

The simulated lab runs the same layers against the same inventory, but some of its
parts stand in for what a real lab has: its nodes are network namespaces of one kernel
(their container engine is podman with images made here; Ceph still runs from the
host's binaries), no calico-node (BIRD
1.6 runs in its place), no registry (the control plane runs from images built here),
and its switches all run FRR. ``labctl sim env`` exports one ``LABCTL_*`` variable per
difference; the CLI hands them to ``from_environ`` here, which checks every value
(those that reach a node against the inventory schema's own grammars) and names the
variable that is wrong. The result is a ``Platform`` (``engine/layer.py``): it
travels on ``LayerContext.platform`` to the layers and is handed to the commands that
talk to the same parts (``bgp status``). Where the simulated lab has something a real
one lacks, its methods return those plan pieces and renders, from
``labctl/sim/plan_pieces.py`` and ``labctl/sim/render/``. Only the CLI imports this
module.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labctl.calico import manifest as calico_manifest
from labctl.errors import UsageError
from labctl.inventory.model import Ceph, Inventory, Server
from labctl.inventory.schema import grammar_error
from labctl.platform import NodeRuntime
from labctl.render.kubernetes import common
from labctl.sim.render import calico_confd, calico_felix, calico_node, calico_standin
from labctl.sim.render import kubernetes as sim_kube
from labctl.sim.render.kubernetes import shared_kernel

if TYPE_CHECKING:  # the plan pieces are imported when a layer asks: validate needs none
    from labctl.engine.actions import Action
    from labctl.engine.layer import LayerContext

ETCD_RUNTIME = "LABCTL_ETCD_RUNTIME"
KUBE_RUNTIME = "LABCTL_KUBE_RUNTIME"
KUBE_BIN_DIR = "LABCTL_KUBE_BIN_DIR"
CALICO_BIRD = "LABCTL_CALICO_BIRD"
CALICO_NODE = "LABCTL_CALICO_NODE"
CALICO_FELIX = "LABCTL_CALICO_FELIX"
SWITCH_PLATFORM = "LABCTL_SWITCH_PLATFORM"
CEPH_RUNTIME = "LABCTL_CEPH_RUNTIME"
CEPH_CONFIG = "LABCTL_CEPH_CONFIG"
BOOT_NETNS = "LABCTL_BOOT_NETNS"
CONTAINER_ENGINE = "LABCTL_CONTAINER_ENGINE"
MONITORING_RUNTIME = "LABCTL_MONITORING_RUNTIME"

# The values each variable may take (None: any non-empty text).
_CHOICES: dict[str, tuple[str, ...] | None] = {
    ETCD_RUNTIME: ("container", "host"),
    # "host" (units) and "pods" (static pods under the node's own containerd, images
    # imported from the build cache) exist only on the simulated lab.
    KUBE_RUNTIME: ("static-pods", "host", "pods"),
    KUBE_BIN_DIR: None,
    CALICO_BIRD: None,
    CALICO_NODE: None,
    # 1 (the default): calico-node's Felix runs beside its confd on the nodes; 0: not.
    CALICO_FELIX: ("0", "1"),
    SWITCH_PLATFORM: ("frr", "eos", "ios"),
    CEPH_RUNTIME: ("container", "host"),
    CEPH_CONFIG: None,
    BOOT_NETNS: None,
    # The engine the nodes run containers with whatever their distribution ships.
    CONTAINER_ENGINE: ("podman",),
    MONITORING_RUNTIME: ("container", "host"),
}
NAMES = tuple(_CHOICES)
# LABCTL_CALICO_NODE=0: no calico-node on the nodes (labctl's own bird.cfg), for debugging.
OPT_OUT = "0"
# Whether Felix runs when LABCTL_CALICO_FELIX is not set: yes, with calico-node's build
# (docs/calico.md, "Felix on the simulated nodes": what it costs); 0 opts out.
FELIX_BY_DEFAULT = True
# Values that reach the nodes' shells and files: held to the inventory's own grammars.
_GRAMMARS = {
    KUBE_BIN_DIR: "absolute_path",
    CALICO_BIRD: "absolute_path",
    CALICO_NODE: "absolute_path",
}


def simulated(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` is a simulated lab's (any stand-in variable set)."""
    return any(environ.get(name) for name in NAMES)


@dataclass(frozen=True)
class SimPlatform:
    """What the simulated lab runs in place of the real thing; a field left empty is as
    the inventory says."""

    etcd: str | None = None
    kube: str | None = None
    # Where the nodes find the Kubernetes binaries: the simulated nodes see the
    # operator's build cache through the host's root.
    kube_binaries: str | None = None
    # The BIRD 1.6 binary the nodes run as a unit instead of calico-node.
    calico_bird: str | None = None
    # scripts/build-calico.sh's build (calico-node, the CNI plugins, confd's files, Calico's
    # manifest): with BIRD, the nodes run its confd and CNI plugin once Calico's objects
    # are on the API (labctl/sim/render/calico_confd.py).
    calico_node: str | None = None
    # calico-node's Felix beside its confd (only with ``calico_node``).
    calico_felix: bool = False
    switches: str | None = None
    ceph_runtime: str | None = None
    # key=value pairs added to cluster.ceph.config, winning over the same keys there.
    ceph_config: tuple[tuple[str, str], ...] = ()
    # The fabric's namespace, where the boot service must listen.
    boot_namespace: str | None = None
    # The nodes are network namespaces of this host: one kernel, one cgroup tree.
    shared_kernel: bool = True
    # Podman in each node's namespaces, images made here and loaded (labctl/sim/engine.py).
    engine: str | None = None
    # Every BMC is OpenIPMI's ipmi_sim, which grants no session privilege to FreeIPMI's
    # IPMI 2.0 handshake (the IPMI exporter's) unless it sends the privilege the
    # open-session stage named ("privilege level cannot be obtained for this user").
    ipmi_workarounds: tuple[str, ...] = ("opensesspriv",)
    # How the monitoring programs run, whatever cluster.monitoring.runtime says (host:
    # the lab was made without podman, so Debian's binaries as units).
    monitoring: str | None = None

    def etcd_runtime(self, inventory: Inventory) -> str:
        return self.etcd or inventory.cluster.etcd.runtime

    def monitoring_runtime(self, inventory: Inventory) -> str:
        return self.monitoring or inventory.cluster.monitoring.runtime

    def kube_runtime(self, inventory: Inventory) -> str:
        return self.kube or inventory.cluster.kubernetes.runtime

    def kube_bin_dir(self, inventory: Inventory) -> str:
        return self.kube_binaries or inventory.cluster.kubernetes.binary_dir

    def node_runtime(self, inventory: Inventory, runtime: str) -> NodeRuntime:
        return shared_kernel(runtime) if self.shared_kernel else NodeRuntime()

    def node_leftovers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        # labctl's containerd (every node's, a shared kernel's) and calico-node's
        # programs as units (BIRD, confd, Felix), with the files only they read: a
        # node reset and powered on again starts none of them before its bootstrap.
        units = (sim_kube.CONTAINERD_UNIT, calico_node.UNIT_NAME, calico_confd.UNIT_NAME,
                 calico_felix.UNIT_NAME)  # fmt: skip
        paths = (sim_kube.CONTAINERD_CONFIG, sim_kube.CONTAINERD_WRAPPER, "/etc/calico",
                 calico_node.CNI_PATH)  # fmt: skip
        return units, paths

    def image_imports(self, ctx: LayerContext, server: Server) -> list[Action]:
        inventory = ctx.inventory
        if common.runtime(inventory, self.kube_runtime(inventory)) != "pods":
            return []
        bin_dir = common.bin_dir(inventory, self.kube_bin_dir(inventory))
        from labctl.sim import plan_pieces

        return plan_pieces.image_imports(ctx, server, bin_dir)

    def etcd_images(self, ctx: LayerContext, server: Server) -> list[Action]:
        if self.engine is None:
            return []
        from labctl.sim import plan_pieces

        return plan_pieces.etcd_images(ctx, server)

    def node_bgp(self, ctx: LayerContext, server: Server) -> list[Action]:
        if self.calico_bird is None:
            return []
        from labctl.sim import plan_pieces

        return plan_pieces.node_bgp(ctx, server, self.calico_bird, self.calico_node is not None)

    def node_bgp_agent(self, ctx: LayerContext, server: Server) -> list[Action]:
        if self.calico_bird is None or self.calico_node is None:
            return []
        from labctl.sim import plan_pieces

        return plan_pieces.node_bgp_agent(
            ctx,
            server,
            self.calico_bird,
            self.calico_node,
            _confd_files(self.calico_node),
            felix=self.calico_felix,
        )

    def confd_takes_over(self) -> bool:
        return self.calico_bird is not None and self.calico_node is not None

    def node_bgp_query(self) -> tuple[str, ...] | None:
        if not self.calico_bird:
            return None
        from labctl.sim import plan_pieces

        return plan_pieces.node_bgp_query(self.calico_bird)

    def calico_kinds(self, inventory: Inventory) -> list[dict[str, Any]]:
        if self.calico_bird is None:
            return []
        if self.calico_node is not None:
            # calico-node's confd and CNI plugin read and write Calico's kinds (IPAM's
            # too) as calico-node's ServiceAccount: the build's manifest's definitions,
            # unless the inventory names its own, and that account's identity and rights.
            docs = _calico_manifest(self.calico_node)
            kinds = (
                calico_manifest.definitions(docs)
                if inventory.cluster.calico.manifest is None
                else []
            )
            identity = [
                d
                for d in docs
                if d["metadata"].get("name") == "calico-node"
                and d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
            ]
            return [*kinds, *identity, calico_confd.CLUSTER_INFORMATION]
        # No manifest can be fetched here; with BIRD standing in for calico-node the API
        # only has to store Calico's objects, which open definitions allow.
        if inventory.cluster.calico.manifest is not None:
            return []
        return calico_standin.definitions()

    def bgp_stand_in(self) -> str | None:
        return self.calico_bird

    def switch_platform(self) -> str | None:
        return self.switches

    def ipmi_exporter_workarounds(self) -> tuple[str, ...]:
        return self.ipmi_workarounds

    def ceph(self, settings: Ceph) -> Ceph:
        if not (self.ceph_runtime or self.ceph_config):
            return settings
        config = dict(settings.config)
        config.update(self.ceph_config)
        return dataclasses.replace(
            settings, runtime=self.ceph_runtime or settings.runtime, config=tuple(config.items())
        )

    def boot_netns(self) -> str | None:
        return self.boot_namespace

    def differences(self) -> tuple[str, ...]:
        lines = []
        if self.shared_kernel:
            lines.append(
                "nodes: network namespaces of one kernel (kubelet on cgroupfs in its own "
                "mount namespace, labctl's containerd, kube-proxy leaves conntrack alone)"
            )
        if self.engine:
            lines.append(
                f"containers: {self.engine} in each node's namespaces (cgroupfs, runc; "
                "Flatcar's /usr/bin/docker is its CLI), images made here from Debian's "
                "binaries and packages, loaded from archives (Ceph's into one read-only "
                "store the nodes share), no registry"
            )
        if self.etcd:
            lines.append(f"etcd: runtime {self.etcd}, whatever cluster.etcd.runtime says")
        if self.monitoring:
            lines.append(
                f"monitoring: runtime {self.monitoring}, whatever cluster.monitoring.runtime says"
            )
        if self.kube == "pods":
            lines.append(
                "kubernetes: static pods from images built here and imported into each "
                "node's containerd, not pulled from a registry"
            )
        elif self.kube:
            lines.append(f"kubernetes: runtime {self.kube}, whatever the inventory says")
        if self.kube_binaries:
            lines.append(f"kubernetes: binaries from {self.kube_binaries}, not binary_dir")
        if self.calico_bird:
            lines.append(f"calico-node: BIRD 1.6 ({self.calico_bird}) as a unit on each node")
        if self.calico_bird and self.calico_node:
            felix = (
                "and Felix (BPF clean-up skipped: no libbpf in the build)"
                if self.calico_felix
                else "no Felix"
            )
            lines.append(
                f"calico-node: its confd and CNI plugin ({self.calico_node}) as the nodes' "
                f"own, once Calico's objects are on the API; {felix}"
            )
        if self.switches:
            lines.append(f"switches: every one runs {self.switches}")
        if self.ceph_runtime:
            lines.append(f"ceph: runtime {self.ceph_runtime}, whatever cluster.ceph.runtime says")
        if self.ceph_config:
            extra = ", ".join(f"{k}={v}" for k, v in self.ceph_config)
            lines.append(f"ceph: extra settings {extra}")
        if self.boot_namespace:
            lines.append(f"boot service: serves in network namespace {self.boot_namespace}")
        if self.ipmi_workarounds:
            flags = ", ".join(self.ipmi_workarounds)
            lines.append(f"BMCs: ipmi_sim, read by the IPMI exporter with FreeIPMI's {flags}")
        return tuple(lines)


def _value(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name) or None
    choices = _CHOICES[name]
    if value is not None and choices is not None and value not in choices:
        raise UsageError(f"{name} is {value!r}; it must be {', '.join(choices)}")
    grammar = _GRAMMARS.get(name)
    # `{version}` in the binaries' folder is filled in with the inventory's version
    # (itself held to the version grammar), so the path is checked with one in its place.
    checked = value.replace("{version}", "v1.0.0") if value is not None else None
    why = grammar_error(grammar, checked) if checked is not None and grammar else None
    if why:
        raise UsageError(f"{name} is {value!r}, which is not of the expected form: {why}")
    return value


def _pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.strip().partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{CEPH_CONFIG}: {item.strip()!r} is not key=value")
        key, value = key.strip(), value.strip()
        for what, text, grammar in (("key", key, "ceph_option"), ("value", value, "ceph_value")):
            why = grammar_error(grammar, text)
            if why:
                raise UsageError(f"{CEPH_CONFIG}: the {what} {text!r} is not of the form: {why}")
        pairs.append((key, value))
    return tuple(pairs)


def from_environ(environ: Mapping[str, str]) -> SimPlatform:
    """The stand-ins ``environ`` names, each value checked (a sentence naming the variable
    when one is wrong)."""
    return SimPlatform(
        etcd=_value(environ, ETCD_RUNTIME),
        kube=_value(environ, KUBE_RUNTIME),
        kube_binaries=_value(environ, KUBE_BIN_DIR),
        calico_bird=_value(environ, CALICO_BIRD),
        calico_node=None if environ.get(CALICO_NODE) == OPT_OUT else _value(environ, CALICO_NODE),
        calico_felix=_felix(environ),
        switches=_value(environ, SWITCH_PLATFORM),
        ceph_runtime=_value(environ, CEPH_RUNTIME),
        ceph_config=_pairs(_value(environ, CEPH_CONFIG)),
        boot_namespace=_value(environ, BOOT_NETNS),
        engine=_value(environ, CONTAINER_ENGINE),
        monitoring=_value(environ, MONITORING_RUNTIME),
    )


def _felix(environ: Mapping[str, str]) -> bool:
    """Whether the nodes run calico-node's Felix: as LABCTL_CALICO_FELIX says, else the
    default; never without calico-node's build (Felix is a mode of that binary)."""
    asked = _value(environ, CALICO_FELIX)
    on = FELIX_BY_DEFAULT if asked is None else asked == "1"
    return on and bool(environ.get(CALICO_NODE)) and environ.get(CALICO_NODE) != OPT_OUT


@functools.cache
def _confd_files(built: str) -> dict[str, str]:
    """confd's conf.d and templates in the build, by path under its folder."""
    root = Path(built) / "confd"
    return {
        str(p.relative_to(root)): p.read_text()
        for sub in ("conf.d", "templates")
        for p in sorted((root / sub).iterdir())
        if p.is_file() and p.suffix in (".toml", ".template")
    }


@functools.cache
def _calico_manifest(built: str) -> list[dict[str, Any]]:
    """Calico's manifest in the build (native v3 definitions), its documents."""
    path = Path(built) / "manifests" / "calico-v3-crds.yaml"
    # libyaml's loader: the pure-Python one took 0.39 s of every bootstrap's planning
    # on its longest path (docs/performance.md, `convgap`); the same documents either way.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(path.read_text(), Loader=loader) if d]
