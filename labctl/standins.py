"""How a simulated lab differs from the real lab its inventory describes, read in one place.

The simulated lab runs the same layers against the same inventory, but some of its
parts stand in for what a real lab has: its nodes have no container engine (etcd and
Ceph run from the host's binaries), no calico-node (BIRD 1.6 runs in its place), no
registry (the control plane runs from images built here), and its switches all run
FRR. ``labctl sim env`` exports one ``LABCTL_*`` variable per difference; this module
is the only reader of them. ``from_environ`` checks every value (those that reach a
node against the inventory schema's own grammars) and names the variable that is
wrong; the result travels on ``LayerContext.standins`` to the layers and is handed to
the commands that talk to the same parts (``bgp status``). Ceph's two stand-ins are
inventory settings (``cluster.ceph.runtime`` and ``.config``), so ``applied`` folds
them into the model once, at load: every reader of Ceph's settings
(its layer, ``ceph status``, the power guard) then sees the same thing.
On a real lab none of the variables is set and every field is empty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from labctl.errors import UsageError
from labctl.inventory.model import Inventory
from labctl.inventory.schema import grammar_error

ETCD_RUNTIME = "LABCTL_ETCD_RUNTIME"
KUBE_RUNTIME = "LABCTL_KUBE_RUNTIME"
KUBE_BIN_DIR = "LABCTL_KUBE_BIN_DIR"
CALICO_BIRD = "LABCTL_CALICO_BIRD"
SWITCH_PLATFORM = "LABCTL_SWITCH_PLATFORM"
CEPH_RUNTIME = "LABCTL_CEPH_RUNTIME"
CEPH_CONFIG = "LABCTL_CEPH_CONFIG"

# The values each variable may take (None: any non-empty text).
_CHOICES: dict[str, tuple[str, ...] | None] = {
    ETCD_RUNTIME: ("container", "host"),
    # "host" (units) and "pods" (static pods under the node's own containerd, images
    # imported from the build cache) exist only on the simulated lab.
    KUBE_RUNTIME: ("static-pods", "host", "pods"),
    KUBE_BIN_DIR: None,
    CALICO_BIRD: None,
    SWITCH_PLATFORM: ("frr", "eos", "ios"),
    CEPH_RUNTIME: ("container", "host"),
    CEPH_CONFIG: None,
}
NAMES = tuple(_CHOICES)
# Values that reach the nodes' shells and files: held to the inventory's own grammars.
_GRAMMARS = {KUBE_BIN_DIR: "absolute_path", CALICO_BIRD: "absolute_path"}


@dataclass(frozen=True)
class StandIns:
    """What the simulated lab runs in place of the real thing; all empty on a real lab."""

    etcd_runtime: str | None = None
    kube_runtime: str | None = None
    # Where the nodes find the Kubernetes binaries: the simulated nodes see the
    # operator's build cache through the host's root.
    kube_bin_dir: str | None = None
    # The BIRD 1.6 binary the nodes run as a unit instead of calico-node.
    calico_bird: str | None = None
    switch_platform: str | None = None
    ceph_runtime: str | None = None
    # key=value pairs added to cluster.ceph.config, winning over the same keys there.
    ceph_config: tuple[tuple[str, str], ...] = ()


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


def from_environ(environ: Mapping[str, str]) -> StandIns:
    """The stand-ins ``environ`` names, each value checked (a sentence naming the variable
    when one is wrong)."""
    return StandIns(
        etcd_runtime=_value(environ, ETCD_RUNTIME),
        kube_runtime=_value(environ, KUBE_RUNTIME),
        kube_bin_dir=_value(environ, KUBE_BIN_DIR),
        calico_bird=_value(environ, CALICO_BIRD),
        switch_platform=_value(environ, SWITCH_PLATFORM),
        ceph_runtime=_value(environ, CEPH_RUNTIME),
        ceph_config=_pairs(_value(environ, CEPH_CONFIG)),
    )


def applied(inventory: Inventory, standins: StandIns) -> Inventory:
    """``inventory`` with Ceph's runtime and extra settings as the stand-ins say (the
    same object when they say nothing)."""
    ceph = inventory.cluster.ceph
    if ceph is None or not (standins.ceph_runtime or standins.ceph_config):
        return inventory
    config = dict(ceph.config)
    config.update(standins.ceph_config)
    changed = dataclasses.replace(
        ceph, runtime=standins.ceph_runtime or ceph.runtime, config=tuple(config.items())
    )
    cluster = dataclasses.replace(inventory.cluster, ceph=changed)
    return dataclasses.replace(inventory, cluster=cluster)
