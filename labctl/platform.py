"""Where the lab labctl runs against differs from what its inventory says: one seam.

A simulated lab runs the same layers against the same inventory, but some of its parts
stand in for a real lab's: its nodes share one kernel (the kubelet and kube-proxy are
told what that forces), etcd and Ceph run from the host's binaries, BIRD 1.6 stands in
for calico-node, every switch runs FRR, the control plane runs from images built here.
Every such difference is one method of ``Platform``, named for what it decides (never
"is this simulated"). The CLI chooses the platform once (``labctl/cli/platform_choice.py``)
and it travels on ``LayerContext.platform``; layers, renderers, drivers and the engine
ask it and never read the environment. ``RealPlatform`` answers from the inventory
alone; the simulated lab's lives with the simulation (``labctl/sim/platform.py``).

One answer is settings other commands read too (Ceph's runtime and extra settings):
``as_run`` gives the inventory with them as the platform says, once, at the edge (the
CLI), so the ceph layer, ``ceph status`` and the power guard see the same thing; the
inventory loader itself reads no environment. (The ``LABCTL_SSH_*`` overrides are not a
stand-in: they point any command at other keys, on a real lab too, and the CLI folds
them into ``lab.ssh`` the same way.) A new simulated difference is one method here, its answer in
both platforms, and its use in the one layer or renderer that needs it.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from labctl.inventory.model import Ceph, Inventory


class Platform(Protocol):
    """How the lab under labctl runs what the inventory describes."""

    def etcd_runtime(self, inventory: Inventory) -> str:
        """How etcd members run: ``container`` or ``host``."""
        ...

    def kube_runtime(self, inventory: Inventory) -> str:
        """How the control plane runs: ``static-pods``, ``host`` (units), or ``pods``
        (static pods from images labctl builds and imports; the simulated lab's)."""
        ...

    def kube_bin_dir(self, inventory: Inventory) -> str:
        """The folder on every node for the Kubernetes binaries ("{version}" unexpanded)."""
        ...

    def shares_kernel(self) -> bool:
        """Whether the nodes share one host's kernel and cgroup tree: the kubelet then
        runs on cgroupfs without swap refusal, in a mount namespace of its own, beside a
        containerd of labctl's, and kube-proxy leaves conntrack's limit as the host set it."""
        ...

    def bgp_stand_in(self) -> str | None:
        """What configures BGP on the nodes: None for calico-node (from Calico's
        manifest), else the BIRD 1.6 binary the nodes run as a unit in its place."""
        ...

    def switch_platform(self) -> str | None:
        """The platform every switch runs whatever the inventory says (None: as it says)."""
        ...

    def ceph(self, settings: Ceph) -> Ceph:
        """Ceph's settings as this lab runs them (its runtime, extra config keys)."""
        ...

    def boot_netns(self) -> str | None:
        """The network namespace the boot service serves from (None: the host's)."""
        ...

    def differences(self) -> tuple[str, ...]:
        """One line per stand-in, saying what stands in for what (empty on a real lab)."""
        ...


@dataclasses.dataclass(frozen=True)
class RealPlatform:
    """A real lab: every answer is the inventory's."""

    def etcd_runtime(self, inventory: Inventory) -> str:
        return inventory.cluster.etcd.runtime

    def kube_runtime(self, inventory: Inventory) -> str:
        return inventory.cluster.kubernetes.runtime

    def kube_bin_dir(self, inventory: Inventory) -> str:
        return inventory.cluster.kubernetes.binary_dir

    def shares_kernel(self) -> bool:
        return False

    def bgp_stand_in(self) -> str | None:
        return None

    def switch_platform(self) -> str | None:
        return None

    def ceph(self, settings: Ceph) -> Ceph:
        return settings

    def boot_netns(self) -> str | None:
        return None

    def differences(self) -> tuple[str, ...]:
        return ()


def as_run(inventory: Inventory, platform: Platform) -> Inventory:
    """``inventory`` with Ceph's settings as ``platform`` runs them (the same object when
    it changes nothing)."""
    ceph = inventory.cluster.ceph
    if ceph is None or platform.ceph(ceph) == ceph:
        return inventory
    cluster = dataclasses.replace(inventory.cluster, ceph=platform.ceph(ceph))
    return dataclasses.replace(inventory, cluster=cluster)
