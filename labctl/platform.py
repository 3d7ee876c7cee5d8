"""Where the lab labctl runs against differs from what its inventory says: one seam.

A simulated lab runs the same layers against the same inventory, but some of its parts
stand in for a real lab's: its nodes share one kernel (the kubelet and kube-proxy are
told what that forces), etcd and Ceph run from the host's binaries, BIRD 1.6 stands in
for calico-node, every switch runs FRR, the control plane runs from images built here.
Every such difference is one method of ``Platform`` (``engine/layer.py``, beside the
context it travels on), named for what it decides or hands over (never "is this
simulated"). Where the simulated lab has something a real one lacks (BIRD on the
nodes, stand-in definitions of Calico's kinds, imported images, a kubelet fit for a
shared kernel), the method returns those plan pieces and the layer adds what it gets:
here, on a real lab, that is nothing, so this module renders nothing and names no
action (it stays below the engine, which imports it). The CLI chooses the platform once
(``labctl/cli/platform_choice.py``) and it travels on ``LayerContext.platform``;
layers, renderers, drivers and the engine ask it and never read the environment.
``RealPlatform`` answers from the inventory alone; the simulated lab's, and every
render that exists only for it, live with the simulation (``labctl/sim/platform.py``,
``labctl/sim/render/``).

One answer is settings other commands read too (Ceph's runtime and extra settings):
``as_run`` gives the inventory with them as the platform says, once, at the edge (the
CLI), so the ceph layer, ``ceph status`` and the power guard see the same thing; the
inventory loader itself reads no environment. (The ``LABCTL_SSH_*`` overrides are not a
stand-in: they point any command at other keys, on a real lab too, and the CLI folds
them into ``lab.ssh`` the same way.) A new simulated difference is one method of the protocol, its
answer in both platforms (here, and in ``labctl/sim/platform.py``), and its one call
site in the layer or renderer that needs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Never, Protocol

from labctl.inventory.model import Ceph, Inventory, Server


@dataclasses.dataclass(frozen=True)
class NodeFile:
    """A file a platform puts on every node (path, text, mode)."""

    path: str
    content: str = dataclasses.field(repr=False)
    mode: int = 0o644


@dataclasses.dataclass(frozen=True)
class NodeRuntime:
    """What the nodes run around the kubelet beyond what the inventory says (nothing on a
    real lab: the OS's containerd, the kubelet and kube-proxy as the inventory sets them)."""

    # Units (and the files each reads) started before the kubelet, in order.
    services: tuple[tuple[str, tuple[NodeFile, ...]], ...] = ()
    # Keys that replace or join the KubeletConfiguration's.
    kubelet_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # A script the kubelet's unit runs it through (``/bin/sh PATH kubelet ...``).
    kubelet_wrapper: NodeFile | None = None
    # Keys that replace or join kube-proxy's KubeProxyConfiguration.
    kube_proxy_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RealPlatform:
    """A real lab: every answer is the inventory's, and no stand-in adds a plan piece."""

    def etcd_runtime(self, inventory: Inventory) -> str:
        return inventory.cluster.etcd.runtime

    def monitoring_runtime(self, inventory: Inventory) -> str:
        return inventory.cluster.monitoring.runtime

    def kube_runtime(self, inventory: Inventory) -> str:
        return inventory.cluster.kubernetes.runtime

    def kube_bin_dir(self, inventory: Inventory) -> str:
        return inventory.cluster.kubernetes.binary_dir

    def node_runtime(self, inventory: Inventory, runtime: str) -> NodeRuntime:
        return NodeRuntime()

    def node_leftovers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (), ()  # the OS's containerd, calico-node's pod: nothing of a stand-in's

    # The plan pieces: ``object`` for the context and ``Never`` for what is returned
    # keep this module below the engine, while matching the protocol's types.
    def image_imports(self, ctx: object, server: Server) -> tuple[Never, ...]:
        return ()  # the nodes pull the control plane's images from the registry

    def etcd_images(self, ctx: object, server: Server) -> tuple[Never, ...]:
        return ()  # the node pulls the etcd image from the registry as the unit starts

    def node_bgp(self, ctx: object, server: Server) -> tuple[Never, ...]:
        return ()  # calico-node, from Calico's manifest

    def node_bgp_agent(self, ctx: object, server: Server) -> tuple[Never, ...]:
        return ()  # calico-node's DaemonSet, from Calico's manifest

    def confd_takes_over(self) -> bool:
        return False  # calico-node's confd configures the nodes' BGP from the start

    def node_bgp_query(self) -> tuple[str, ...] | None:
        return None

    def calico_kinds(self, inventory: Inventory) -> list[dict[str, Any]]:
        return []  # Calico's manifest brings them

    def bgp_stand_in(self) -> str | None:
        return None

    def switch_platform(self) -> str | None:
        return None

    def ipmi_exporter_workarounds(self) -> tuple[str, ...]:
        return ()  # FreeIPMI's default handshake, which conforming BMCs accept

    def ceph(self, settings: Ceph) -> Ceph:
        return settings

    def boot_netns(self) -> str | None:
        return None

    def differences(self) -> tuple[str, ...]:
        return ()


class RunsCeph(Protocol):
    """The part of a platform ``as_run`` asks."""

    def ceph(self, settings: Ceph) -> Ceph: ...


def as_run(inventory: Inventory, platform: RunsCeph) -> Inventory:
    """``inventory`` with Ceph's settings as ``platform`` runs them (the same object when
    it changes nothing)."""
    ceph = inventory.cluster.ceph
    if ceph is None or platform.ceph(ceph) == ceph:
        return inventory
    cluster = dataclasses.replace(inventory.cluster, ceph=platform.ceph(ceph))
    return dataclasses.replace(inventory, cluster=cluster)
